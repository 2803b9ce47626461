"""Inference forms that export (torch.export, ONNX) and run anywhere: real tensors only, no FFT, no complex numbers.

``freeze(model, L)`` returns a copy of ``model`` in which every SSM convolution layer (S4, S4D, DSS, DLR, EMA, SGConv,
also inside GSS and Mega) is a ``FrozenConv``, and every S5 a ``FrozenS5``: its kernel K (C, H, L) computed once,
stored real, and applied by a direct convolution (conv1d),

    y_t = Σ_{k=0}^{t} K_k u_{t−k}  [+ Σ_{k≥0} K^rev_k u_{t+1+k}, bidirectional]  + D ⊙ u_t,   then act, output map,

which costs O(L²·H·C) per sequence instead of the FFT's O(L log L·H·C), and matches the layer to float rounding for
inputs up to length L. Its ``step`` is the layer's discretized recurrence in real arithmetic on the state
(B, H, N) = (Re x_0, Im x_0, Re x_1, ...) (the kernels' real_step_form):

    x' = Ā x + B̄ u_t,   y_t = s·Re(C x') + D u_t      Ā elementwise (diagonal SSMs) or a real 2N/2 × 2N/2 matrix (S4)

``Stepper(frozen)`` wraps a frozen per-step model (or layer) as ``forward(x_t, *states) -> (y_t, *next_states)``,
a module of tensors in and tensors out, for streaming inference after export.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .kernels.base import as_complex
from .kernels.chunked import interleave
from .kernels.diag import DiagonalSystem
from .kernels.dss import DSSKernel
from .layers import S5, LiquidS4, SSMConv
from .layers.checks import check_batch_size, check_input, check_step_input, mask_padding


def _check_real_state(state, shape: tuple, dtype: torch.dtype) -> None:
    if not isinstance(state, torch.Tensor) or tuple(state.shape) != shape or state.dtype != dtype:
        got = f"{tuple(state.shape)} {state.dtype}" if isinstance(state, torch.Tensor) else type(state).__name__
        raise ValueError(f"state: expected a {dtype} tensor of shape {shape} (see default_state), got {got}")


def _complex_mul(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(a·x) for complex numbers stored as real (..., 2) pairs."""
    return torch.stack([a[..., 0] * x[..., 0] - a[..., 1] * x[..., 1], a[..., 1] * x[..., 0] + a[..., 0] * x[..., 1]],
                       -1)


class FrozenConv(nn.Module):
    """An SSMConv layer with its kernel of length L computed once (module docstring); forward(u) and step(u_t, state)
    in real arithmetic; eval only."""

    def __init__(self, layer: SSMConv, L: int, rate: float = 1.0):
        super().__init__()
        if isinstance(layer, LiquidS4):
            raise ValueError("freeze: Liquid-S4 adds kernels on products of inputs; it has no frozen form")
        kernel = layer.kernel
        if isinstance(kernel, DSSKernel) and kernel.variant == "softmax" and kernel.l_max is None:
            raise ValueError("freeze: a DSS-softmax kernel without l_max is normalized over each input's own length; "
                             "build the layer with l_max to freeze it")
        if layer.l_max is not None and L > layer.l_max:
            raise ValueError(f"L: the layer takes inputs up to l_max={layer.l_max}, got {L}")
        self.H, self.channels, self.bidirectional, self.l_max = layer.H, layer.channels, layer.bidirectional, L
        dtype = layer.D.dtype
        with torch.no_grad():
            K = kernel(L, rate)  # (C or 2C, H, L)
            causal, rev = (K[:self.channels], K[self.channels:]) if self.bidirectional else (K, None)
            # conv1d correlates: the causal taps reversed, then the anti-causal ones (lags -1, -2, ...)
            taps = causal.flip(-1) if rev is None else torch.cat([causal.flip(-1), rev[..., :L - 1]], -1)
            self.register_buffer("weight", taps.transpose(0, 1).reshape(self.H * self.channels, 1, -1).to(dtype))
            self._register_recurrence(layer, rate, dtype)
        del layer.kernel  # replaced by the buffers above; the layer is kept for its output stage (act, output map)
        self.layer = layer

    def _register_recurrence(self, layer: SSMConv, rate: float, dtype: torch.dtype) -> None:
        """Buffers of the real step (kernels' real_step_form: Ā, B̄, readout on interleaved states; a diagonal Ā is
        kept as its diagonal), or none for layers without a recurrent view."""
        try:
            recurrence = layer.kernel.recurrence(rate) if not self.bidirectional else None
        except ValueError:  # SGConv: a kernel that no state space model generates
            recurrence = None
        self.has_step = recurrence is not None
        if not self.has_step:
            return
        M, b, c = recurrence.real_step_form()  # (H, 2 N2, 2 N2), (H, 2 N2), (Cch, H, 2 N2)
        diagonal = isinstance(recurrence, DiagonalSystem)
        A_diag = torch.view_as_real(torch.exp(recurrence.log_dA)) if diagonal else None  # (H, N2, 2)
        for name, t in (("A_diag", A_diag), ("A_dense", None if diagonal else M), ("B_bar", b), ("readout", c)):
            self.register_buffer(name, None if t is None else t.to(dtype))

    def forward(self, u: torch.Tensor, state=None, lengths=None):
        """u (B, L' <= L, H) -> (y (B, L', H), None); lengths (B,): a suffix-padded batch (padding zeroed)."""
        if state is not None:
            raise ValueError("state: a frozen layer computes whole sequences from a zero state; stream with step()")
        check_input(u, self.H, self.l_max, self.weight.dtype)
        u = mask_padding(u, lengths)
        Bt, Lu, _ = u.shape
        x = u.transpose(1, 2)  # (B, H, L')
        taps = self.l_max - 1
        padded = F.pad(x, (taps, taps if self.bidirectional else 0))
        y = F.conv1d(padded, self.weight, groups=self.H).view(Bt, self.H, self.channels, Lu).transpose(1, 2)
        y = y + self.layer.D[..., None] * x[:, None]  # (B, C, H, L')
        return self.layer._output(y), None

    def default_state(self, batch_size: int) -> torch.Tensor:
        """The zero state: (batch, H, N) real, interleaved (Re x_0, Im x_0, Re x_1, ...)."""
        self._check_step()
        check_batch_size(batch_size)
        return self.B_bar.new_zeros(batch_size, *self.B_bar.shape)

    def _check_step(self) -> None:
        if not self.has_step:
            raise ValueError("step: this layer has no recurrent view (bidirectional, or SGConv's kernel)")

    def step(self, u: torch.Tensor, state: torch.Tensor):
        """u (B, H), state (B, H, N) -> (y (B, H), next state)."""
        self._check_step()
        check_step_input(u, self.H, self.weight.dtype)
        _check_real_state(state, (u.shape[0],) + tuple(self.B_bar.shape), u.dtype)
        if self.A_diag is not None:
            x = _complex_mul(self.A_diag, state.unflatten(-1, (-1, 2))).flatten(-2)
        else:
            x = torch.einsum("hij,bhj->bhi", self.A_dense, state)
        x = x + self.B_bar * u[..., None]
        y = torch.einsum("chk,bhk->bch", self.readout, x) + self.layer.D * u[:, None]  # (B, C, H)
        return self.layer._output(y[..., None])[:, 0], x


class FrozenS5(nn.Module):
    """S5 with its discretization computed once, in real arithmetic (module docstring). The whole-sequence form
    convolves each state's input with Λ̄^k: x_t = Σ_{k<=t} Λ̄^k B̄ u_{t−k} (a conv1d over (Re, Im) pairs, one group
    per state), y_t = 2·Re(C x_t) + D u_t; the reverse direction of a bidirectional layer is the same over the
    time-reversed input, read by its own C. No dt_scale (the discretization is fixed)."""

    def __init__(self, layer: S5, L: int, rate: float = 1.0):
        super().__init__()
        if layer.l_max is not None and L > layer.l_max:
            raise ValueError(f"L: the layer takes inputs up to l_max={layer.l_max}, got {L}")
        self.H, self.P2, self.bidirectional, self.l_max = layer.H, layer.P2, layer.bidirectional, L
        dtype = layer.D.dtype
        with torch.no_grad():
            dA, q = layer.discrete(rate)  # (P2,) each
            B_bar = q[:, None] * as_complex(layer.B)  # (P2, H); stored as (H, 2 P2), interleaved
            powers = dA[:, None] ** torch.arange(L, device=dA.device)  # (P2, L): Λ̄^k
            re, im = powers.real.flip(-1), powers.imag.flip(-1)  # conv1d correlates: taps reversed
            taps = torch.stack([torch.stack([re, -im], 1), torch.stack([im, re], 1)], 1)  # (P2, 2 out, 2 in, L)
            C = as_complex(layer.C)  # (directions, H, P2)
            for name, t in (("A", torch.view_as_real(dA)), ("B_bar", interleave(B_bar.T)),
                            ("weight", taps.reshape(2 * self.P2, 2, L)),
                            ("readout", 2 * torch.stack([C.real, -C.imag], -1).flatten(-2))):  # (dirs, H, 2 P2)
                self.register_buffer(name, t.to(dtype).contiguous())
        for name in ("A_real", "A_imag", "B", "log_dt", "C"):  # replaced by the buffers above
            delattr(layer, name)
        self.layer = layer  # kept for its output stage (activation, GLU, dropout)

    def _convolve(self, Bu: torch.Tensor) -> torch.Tensor:
        """x_t = Σ_k Λ̄^k Bu_{t−k}: Bu (B, 2 P2, L) interleaved (Re, Im) -> the same shape."""
        return F.conv1d(F.pad(Bu, (self.l_max - 1, 0)), self.weight, groups=self.P2)

    def forward(self, u: torch.Tensor, state=None, lengths=None):
        """u (B, L' <= L, H) -> (y (B, L', H), None); lengths (B,): a suffix-padded batch (padding zeroed)."""
        if state is not None:
            raise ValueError("state: a frozen layer computes whole sequences from a zero state; stream with step()")
        check_input(u, self.H, self.l_max, self.weight.dtype)
        u = mask_padding(u, lengths)
        Bu = torch.einsum("bth,hk->bkt", u, self.B_bar)  # (B, 2 P2, L'): interleaved Re, Im
        y = torch.einsum("hk,bkt->bth", self.readout[0], self._convolve(Bu))
        if self.bidirectional:
            y = y + torch.einsum("hk,bkt->bth", self.readout[1], self._convolve(Bu.flip(-1)).flip(-1))
        return self.layer._output(y + self.layer.D * u), None

    def default_state(self, batch_size: int) -> torch.Tensor:
        """The zero state: (batch, P) real, interleaved (Re x_0, Im x_0, ...)."""
        if self.bidirectional:
            raise ValueError("default_state: a bidirectional layer has no recurrent view (it reads future inputs)")
        check_batch_size(batch_size)
        return self.A.new_zeros(batch_size, 2 * self.P2)

    def step(self, u: torch.Tensor, state: torch.Tensor):
        """u (B, H), state (B, P) -> (y (B, H), next state)."""
        if self.bidirectional:
            raise ValueError("step: a bidirectional layer has no recurrent view (it reads future inputs)")
        check_step_input(u, self.H, self.weight.dtype)
        _check_real_state(state, (u.shape[0], 2 * self.P2), u.dtype)
        x = _complex_mul(self.A, state.unflatten(-1, (-1, 2))).flatten(-2) + u @ self.B_bar
        return self.layer._output(x @ self.readout[0].T + self.layer.D * u), x


def freeze(model: nn.Module, L: int, rate: float = 1.0) -> nn.Module:
    """A copy of ``model`` (a layer or a whole model) in eval mode, with every SSMConv and S5 inside replaced by its
    frozen form (FrozenConv, FrozenS5) for inputs up to length L (sampled at Δ·rate); ``model`` is left as it is."""
    if not isinstance(L, int) or L < 1:
        raise ValueError(f"L: expected a positive integer (the longest input), got {L!r}")
    frozen = copy.deepcopy(model).eval()
    if isinstance(frozen, FROZEN_FORMS):
        return _frozen_form(frozen, L, rate)
    layers = [(parent, name, child) for parent in frozen.modules() for name, child in parent.named_children()
              if isinstance(child, FROZEN_FORMS)]
    for parent, name, child in layers:
        setattr(parent, name, _frozen_form(child, L, rate))
    return frozen


FROZEN_FORMS = (SSMConv, S5)


def _frozen_form(layer: nn.Module, L: int, rate: float) -> nn.Module:
    return (FrozenS5(layer, L, rate) if isinstance(layer, S5) else FrozenConv(layer, L, rate)).eval()


class Stepper(nn.Module):
    """One recurrent step of a frozen per-step SequenceModel (or of one frozen layer) with tensors in and out:
    forward(x_t, *states) -> (y_t, *next_states); ``initial_states(batch)`` gives the zero states."""

    def __init__(self, frozen: nn.Module):
        super().__init__()
        self.model = frozen
        self.single = isinstance(frozen, (FrozenConv, FrozenS5))
        self.eval()

    def initial_states(self, batch_size: int) -> tuple:
        states = self.model.default_state(batch_size)
        return (states,) if self.single else tuple(states)

    def forward(self, x_t: torch.Tensor, *states: torch.Tensor) -> tuple:
        if self.single:
            y, state = self.model.step(x_t, states[0])
            return y, state
        y, next_states = self.model.step(x_t, list(states))
        return (y, *next_states)
