"""What every SSM kernel module shares: the Δ parameter, tagged SSM parameters, state shape, and the contract.

A kernel module owns the parameters of H independent SSMs (one per input channel, each with Cch output channels)
and provides their three views:
    forward(L, rate)           -> K (Cch, H, L) real: the convolution kernel of length L
    recurrence(rate)           -> an object with step(x, u) and forward_state(u, x0), made of carried_output(x0, L),
                                  advance(x0, L) and end_state(u) (see diag.DiagonalSystem)
    default_state(batch)       -> zeros (batch, H, N/2) complex: one member of each conjugate pair of the state
``rate`` samples the same continuous system at step Δ·rate (rate 0.5: twice the resolution).

Every kernel has an output parameter ``C`` (complex, (Cch, H, N/2)); most have Δ's parameter (``init_dt``): log Δ, or
softplus⁻¹(Δ) with dt_transform="softplus" as the official S4 configs.
SSM parameters (Λ, P, B, Δ) are registered with ``register_ssm``: their optimizer settings {"lr": ssm_lr,
"weight_decay": 0.0} are recorded by ``set_optim``, which ssmkit.train.optim.param_groups turns into their own
optimizer group (the S4 recipe); with ssm_lr == 0 they are buffers and stay fixed. The record is kept by the module,
not by the tensor, so it survives what replaces parameter tensors (moves from the meta device, to_empty,
load_state_dict(assign=True)). Complex parameters are stored as real tensors (..., 2) so that
every optimizer, DDP and safetensors handle them.

bandlimit (S4ND, Nguyen et al. 2022): kernels with a Δ and eigenvalues λ (S4, S4D) can zero the output weight of every
mode whose frequency, in cycles per sample at the base step, reaches half the band: C_n = 0 where
Δ·|Im λ_n|/2π >= bandlimit/2 (bandlimit_mask). The mask uses Δ, not Δ·rate, as the official code (its
``dt / rate``): a model keeps the same modes at every resolution, and a bandlimit below 1 leaves room before the
Nyquist frequency for a coarser sampling (rate > 1) to still resolve the modes kept.

n_ssm: the number of independent SSMs (Λ, P, B) behind the H channels; None or H: one per channel, 1: one shared
by all (the official S4 configs' n_ssm: 1 for LRA; DSS and DLR always share Λ). A shared parameter has n_ssm rows
where a per-channel one has H (at dim −2 of its complex form); channel h uses copy h mod n_ssm, as the official code
tiles them. Δ and C stay per channel.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def bandlimit_mask(Lambda: torch.Tensor, dt: torch.Tensor, bandlimit: float) -> torch.Tensor:
    """(H, N2) of 1.0 where Δ·|Im λ_n|/2π < bandlimit/2 (a mode below half the band), else 0.0.

    Lambda (H, N2) complex; dt (H,) the base step (module docstring)."""
    return (dt[:, None] * Lambda.imag.abs() / (2 * math.pi) < bandlimit / 2).to(dt.dtype)


def check_bandlimit(bandlimit) -> float | None:
    if bandlimit is not None and not (isinstance(bandlimit, (int, float)) and not isinstance(bandlimit, bool)
                                      and 0 < bandlimit < math.inf):
        raise ValueError(f"bandlimit: expected None (off) or a positive number (1: up to the Nyquist frequency), "
                         f"got {bandlimit!r}")
    return None if bandlimit is None else float(bandlimit)


DT_TRANSFORMS = ("exp", "softplus")


def set_optim(module: nn.Module, name: str, settings: dict) -> None:
    """Record optimizer settings (lr, weight_decay) of ``module``'s parameter ``name``, for param_groups: kept in the
    module's ``_optim_settings``, so that they outlive the parameter tensor."""
    module.__dict__.setdefault("_optim_settings", {})[name] = settings


def check_lr(name: str, lr) -> None:
    """A learning-rate option: None (the model's) or a positive number, else one line naming it."""
    if lr is not None and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0):
        raise ValueError(f"{name}: expected None (the model's lr) or a positive learning rate, got {lr!r}")


def register_ssm(module: nn.Module, name: str, value: torch.Tensor, ssm_lr: float | None, trainable: bool = True):
    """Register an SSM parameter on ``module``: complex values stored as real (..., 2); its optimizer settings
    ``{"lr": ssm_lr, "weight_decay": 0.0}`` recorded by set_optim; a buffer (fixed) when not trainable or
    ssm_lr == 0."""
    if value.is_complex():
        value = torch.view_as_real(value)
    value = value.to(torch.get_default_dtype()).contiguous()
    if not trainable or ssm_lr == 0:
        module.register_buffer(name, value)
        return
    module.register_parameter(name, nn.Parameter(value))
    set_optim(module, name, {"weight_decay": 0.0} if ssm_lr is None else {"lr": ssm_lr, "weight_decay": 0.0})


def as_complex(t: torch.Tensor) -> torch.Tensor:
    """A complex parameter stored as real (..., 2), in float32/float64 (half precisions are widened)."""
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return torch.view_as_complex(t)


# the most numbers a length-blocked reduction forms at once (blocked_end_state): 128 MiB of complex64
BLOCK_ELEMENTS = 1 << 24


def block_length(L: int, per_step: int) -> int:
    """Steps per block of a reduction over L steps that forms per_step numbers per step: at most BLOCK_ELEMENTS."""
    return min(L, max(1, BLOCK_ELEMENTS // per_step))


def blocked_end_state(u: torch.Tensor, T: int, block_state, advance) -> torch.Tensor:
    """x_L = Σ_j Ā^{L−1−j} B̄ u_j for u (..., L), one block of T steps at a time (T from block_length), by Horner's
    rule over the blocks: x ← Ā^n x + (the end state of the next n steps alone). block_state(u_block) gives a
    block's own end state, advance(x, n) is Ā^n x. Nothing of the whole length L is formed (a sequence-parallel
    rank of 2^20 steps formed 32 GiB)."""
    L = u.shape[-1]
    x = block_state(u[..., :T])
    for start in range(T, L, T):
        block = u[..., start:start + T]
        x = advance(x, block.shape[-1]) + block_state(block)
    return x


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex128 for float64 parameters, complex64 otherwise (bf16/fp16 never reach the complex math)."""
    return torch.complex128 if dtype == torch.float64 else torch.complex64


class SSMKernel(nn.Module):
    # recurrence(rate) reproduces forward(L, rate) at every length L, so the convolution may run in chunked form
    # (ops.chunkconv); a kernel normalized over a fixed length says False
    chunkable = True
    bandlimit: float | None = None  # set by kernels with a Lambda() (S4, S4D), see bandlimit_mask
    dt_transform = "exp"  # how Δ's parameter gives Δ (init_dt)
    # whether d_state may be odd: the DPLR kernel then keeps d_state // 2 pairs (hippo.nplr drops the real mode)
    odd_d_state = False

    def __init__(self, d_model: int, d_state: int, channels: int = 1, ssm_lr: float | None = 1e-3,
                 n_ssm: int | None = None):
        super().__init__()
        if not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"d_model: expected a positive integer, got {d_model!r}")
        if not isinstance(d_state, int) or d_state < 2 or (d_state % 2 and not self.odd_d_state):
            raise ValueError(f"d_state: expected an even integer >= 2 (stored as d_state/2 conjugate pairs), "
                             f"got {d_state!r}")
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels: expected a positive integer, got {channels!r}")
        if ssm_lr is not None and ssm_lr < 0:
            raise ValueError(f"ssm_lr: expected None or >= 0, got {ssm_lr}")
        if n_ssm is not None and (not isinstance(n_ssm, int) or n_ssm < 1 or d_model % n_ssm):
            raise ValueError(f"n_ssm: expected None (one SSM per channel) or a positive divisor of d_model={d_model}, "
                             f"got {n_ssm!r}")
        self.H, self.N2, self.channels = d_model, d_state // 2, channels
        self.n_ssm = d_model if n_ssm is None else n_ssm
        self.ssm_lr = ssm_lr

    def init_dt(self, dt_min: float, dt_max: float, trainable: bool = True, pair: bool = False,
                transform: str = "exp", lr: float | None | str = "ssm") -> torch.Tensor:
        """Register Δ's parameter (H,), Δ drawn log-uniformly in [dt_min, dt_max]; returns the Δ drawn (float64).

        transform: how the parameter gives Δ, ``exp`` (Δ = exp(log_dt)) or ``softplus`` (Δ = softplus(inv_dt), the
        official S4 configs' dt_transform); the same Δ at init, a different path in training once Δ is large.
        lr: Δ's learning rate, ``"ssm"`` (ssm_lr, as the other SSM parameters), None (the model's, as the official
        ListOps, IMDB and AAN configs' lr.dt: null) or a number; never weight decay.
        pair: (H, 2), one Δ for the real and one for the imaginary part of λ (DSS), drawn equal."""
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"dt_min, dt_max: expected 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        if transform not in DT_TRANSFORMS:
            raise ValueError(f"dt_transform: expected one of {DT_TRANSFORMS}, got {transform!r}")
        if not (lr is None or lr == "ssm" or (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr >= 0)):
            raise ValueError(f"dt_lr: expected 'ssm', None or a number >= 0, got {lr!r}")
        self.dt_transform = transform
        log_dt = torch.rand(self.H, dtype=torch.float64) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        raw = log_dt if transform == "exp" else torch.log(torch.expm1(log_dt.exp()))  # softplus⁻¹(Δ)
        register_ssm(self, "log_dt" if transform == "exp" else "inv_dt", raw[:, None].repeat(1, 2) if pair else raw,
                     self.ssm_lr if lr == "ssm" else lr, trainable)
        return log_dt.exp()

    # -- parameters ------------------------------------------------------------------------------------------------
    def register_ssm(self, name: str, value: torch.Tensor, trainable: bool = True) -> None:
        """Register an SSM parameter, tagged for its optimizer group (see the module function register_ssm)."""
        register_ssm(self, name, value, self.ssm_lr, trainable)

    def register_output(self, name: str, value: torch.Tensor, ssm_group: bool = False, lr: float | None = None) -> None:
        """Register C (or another output-side parameter), stored as real (..., 2): ordinary optimizer group, or with
        ssm_group the SSM parameters' lr (the model's when ssm_lr is None or 0) and no weight decay (DSS's and DLR's W);
        lr: its own learning rate, with the ordinary weight decay (C_lr: the official configs whose layer ``lr`` is
        one number give it to C too)."""
        value = torch.view_as_real(value).to(torch.get_default_dtype()).contiguous()
        self.register_parameter(name, nn.Parameter(value))
        if ssm_group:
            set_optim(self, name, {"weight_decay": 0.0, **({"lr": self.ssm_lr} if self.ssm_lr else {})})
        elif lr is not None:
            check_lr(f"{name}_lr", lr)
            set_optim(self, name, {"lr": lr})

    def cplx(self, name: str) -> torch.Tensor:
        """A complex parameter in the compute dtype (complex128 for float64 modules, else complex64), over the H
        channels (a shared one repeated, see n_ssm)."""
        return self.over_channels(as_complex(getattr(self, name)))

    def real(self, name: str) -> torch.Tensor:
        """A real SSM parameter in the compute dtype, over the H channels (a shared one repeated, see n_ssm)."""
        return self.over_channels(getattr(self, name).to(self.real_dtype))

    def over_channels(self, t: torch.Tensor) -> torch.Tensor:
        """t with n_ssm or H rows at dim −2 -> H rows: channel h takes row h mod n_ssm."""
        n = t.shape[-2]
        return t if n == self.H else t.repeat(*([1] * (t.dim() - 2)), self.H // n, 1)

    def output_C(self) -> torch.Tensor:
        """C (Cch, H, N2) as the kernel uses it: the parameter over the channels, times bandlimit_mask of the base Δ
        when a bandlimit is set."""
        C = self.cplx("C")
        return C if self.bandlimit is None else C * bandlimit_mask(self.Lambda(), self.dt(), self.bandlimit)

    @property
    def real_dtype(self) -> torch.dtype:
        return torch.float64 if self.C.dtype == torch.float64 else torch.float32

    def dt(self, rate: float = 1.0) -> torch.Tensor:
        """Δ·rate, (H,) (or (H, 2), see init_dt)."""
        if self.dt_transform == "softplus":
            return F.softplus(self.inv_dt.to(self.real_dtype)) * rate
        return torch.exp(self.log_dt.to(self.real_dtype)) * rate

    # -- contract --------------------------------------------------------------------------------------------------
    @property
    def state_shape(self) -> tuple[int, int]:
        return (self.H, self.N2)

    def default_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, self.H, self.N2, dtype=complex_dtype(self.real_dtype), device=self.C.device)

    def forward(self, L: int, rate: float = 1.0) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def recurrence(self, rate: float = 1.0):  # pragma: no cover - abstract
        raise NotImplementedError
