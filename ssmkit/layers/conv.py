"""SSMConv: the sequence layer around any SSM kernel — convolutional, recurrent and chunked views.

    y = Linear_out( Dropout( act( K ∗ u + D ⊙ u ) ) )        u, y: (B, L, H)
    y = Linear_out( Dropout( act( Dropout( K ∗ u + D ⊙ u ) ) ) )       with conv_dropout=True

``conv_dropout`` also drops the convolution's output before the activation, at the same rate and element-wise: the
current official S4Block does (it hands its dropout, but not its tie_dropout, to its FFTConv, which drops y with
nn.Dropout; the block then drops again after the activation, tied if tie_dropout); the older official S4 layer, and
the S4 that SSSD and ViS4mer ship, drop once.

K (C, H, L) comes from the kernel module (an SSMKernel, or any module with the same contract such as SGConv's,
whose recurrent methods raise; C output channels per input channel; a bidirectional layer uses a second set
of C channels as the anti-causal half, see ops.fftconv). The output map is ``glu`` (Linear(C·H → 2H) then GLU, the
S4 block's default), ``linear`` (Linear(C·H → H)) or ``none`` (identity, needs C = 1).

``recompute`` trades time for memory in training: the layer keeps only its input for backward and recomputes its
activations there, one slice of the batch at a time (True: slices of about 64M inputs; an integer: that many batch
rows per slice). Forward + backward then costs one more input-side forward, and more with small slices on a GPU (the
chunk scan takes as long for a few rows as for 16); the kernel or chunk matrices are formed once per step as without
it. In a deep model the saving is the activations of every layer but the one in backward; in one layer alone only
slices lower the peak.

``cuda_graph`` (CUDA training): the whole layer, chunk matrices to output map, forward and backward, replays from two
CUDA graphs captured for each input shape it meets (layers/cuda_graphs.py): for short sequences and small states,
where launching the kernels costs more than running them. Its output is the graph's buffer, valid until the layer's
next replay; a call made while an earlier call's backward is still to come runs eagerly (layers/cuda_graphs.py).

Views, which agree to rounding:
- forward(u)                         the convolution over the whole sequence: on CUDA with Triton, by chunked state
                                     passing (ops.chunkconv, kernels that can, see SSMKernel.chunkable), else by FFT;
- forward(u, state) -> (y, state')   the same on one chunk, with the state of the previous chunks carried in;
- step(u_t, state)  -> (y_t, state') one sample of the recurrence (cached discretization, see setup_step).
The SSM math runs in float32 (complex64) for float32, bf16 and fp16 layers and under autocast, or in float64 when the
layer is float64; its result is cast back to u's dtype (the rule of layers.checks). Under autocast on the GPU, the
chunked convolution's products within chunks run in TF32 (ops.chunkconv_act's precision; the chunk matrices and the
state passed between chunks stay float32).
"""
from __future__ import annotations

import functools
import inspect

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..kernels.base import complex_dtype
from ..ops import ChunkPart, backend, chunkconv, chunkconv_act, fftconv, linear_glu, ssm_step
from ..ops.chunkconv_act import ACTIVATIONS as FUSED_ACTIVATIONS
from ..ops.float32_backward import autocast_off
from .chunk_parts import CHUNK, CachedParts, GraphedParts, build_parts
from .cuda_graphs import GraphedLayer
from .checks import check_batch_size, check_input, check_rate, check_state, check_step_input, mask_padding
from .dropout import dropout as make_dropout
from .factory import factory_kwargs
from .param_versions import Derived, values_key
from .sequence_parallel import incoming_state
from .stack_parts import StackedParts, group_parts

# recompute=True: inputs per recomputed batch slice (256 MiB in float32). Each slice runs the chunk scan once more, and
# the scan takes as long for 1 row as for 16 (benchmarks/recompute.py, H200, B = 16, H = 256, L = 64k: 1-row slices
# 115 ms, 4-row slices 67 ms at 0.23 of the official layer's memory); at B = 16, H = 256 that is 4 rows at L = 64k
# and the whole batch up to L = 16k
RECOMPUTE_ELEMENTS = 1 << 26
ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "relu": nn.ReLU, "id": nn.Identity}
OUTPUTS = ("glu", "linear", "none")
# SSMConv's options for the block around the kernel, which every layer over it takes (block_options)
BLOCK_OPTIONS = ("activation", "output", "dropout", "tie_dropout", "conv_dropout", "recompute", "cuda_graph")


def kernel_channels(channels: int, bidirectional: bool) -> int:
    """Kernel output channels a layer needs: C, or 2C for a bidirectional layer (causal + anti-causal halves)."""
    return channels * (2 if bidirectional else 1)


def output_stage(channels: int, H: int, activation: str, output: str, dropout: float, tie_dropout: bool = False
                 ) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(activation, dropout, output map) of a convolution block with C·H features: act, then Dropout (element-wise, or
    tied across positions: layers/dropout.py), then ``glu`` Linear(C·H → 2H) + GLU, ``linear`` Linear(C·H → H) or
    ``none`` (C must be 1). Options checked by name."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {tuple(ACTIVATIONS)}, got {activation!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output: expected one of {OUTPUTS}, got {output!r}")
    if output == "none" and channels != 1:
        raise ValueError(f"output='none' keeps C·H features, so it needs channels=1, got channels={channels}")
    drop = make_dropout(dropout, tie_dropout)
    if output == "glu":
        out = nn.Sequential(nn.Linear(channels * H, 2 * H), nn.GLU(dim=-1))
    else:
        out = nn.Linear(channels * H, H) if output == "linear" else nn.Identity()
    return ACTIVATIONS[activation](), drop, out


def block_options(*, leave_out: tuple[str, ...] = (), **defaults):
    """Decorate the __init__ of a layer over SSMConv that ends in ``**block``: it takes SSMConv's block options
    (BLOCK_OPTIONS, less ``leave_out``) by name, with this layer's ``defaults`` where given and SSMConv's otherwise,
    and receives them in ``block`` to hand on. Its signature and annotations list each of them (what the registry,
    with_defaults, the config checks and help() read; factory_kwargs refuses other names by them)."""
    names = [n for n in BLOCK_OPTIONS if n not in leave_out]
    given = dict(inspect.signature(SSMConv.__init__).parameters)
    options = [given[n].replace(default=defaults.pop(n, given[n].default)) for n in names]
    if defaults:
        raise ValueError(f"block_options: {sorted(defaults)} are not block options {names}")

    def decorate(init):
        signature = inspect.signature(init)
        own = list(signature.parameters.values())
        if own[-1].kind is not inspect.Parameter.VAR_KEYWORD:
            raise TypeError(f"block_options: {init.__qualname__} must end in **block")

        @functools.wraps(init)
        def wrapped(*args, **kwargs):
            block = {p.name: kwargs.pop(p.name, p.default) for p in options}
            init(*args, **kwargs, **block)

        wrapped.__signature__ = signature.replace(parameters=own[:-1] + options)
        # the config checks read the types from the annotations (options.check_options)
        wrapped.__annotations__ = {**{k: v for k, v in init.__annotations__.items() if k != own[-1].name},
                                   **{p.name: p.annotation for p in options}}
        return wrapped

    return decorate


class SSMConv(nn.Module):
    @factory_kwargs
    def __init__(self, kernel: nn.Module, *, channels: int = 1, bidirectional: bool = False,
                 activation: str = "gelu", output: str = "glu", dropout: float = 0.0, tie_dropout: bool = False,
                 l_max: int | None = None, recompute: bool | int = False, cuda_graph: bool = False,
                 conv_dropout: bool = False):
        super().__init__()
        if not (isinstance(recompute, bool) or (isinstance(recompute, int) and recompute >= 1)):
            raise ValueError(f"recompute: expected True, False or a positive number of batch rows per slice, got "
                             f"{recompute!r}")
        if not isinstance(cuda_graph, bool) or (cuda_graph and recompute):
            raise ValueError(f"cuda_graph: expected a bool, and not together with recompute; got cuda_graph="
                             f"{cuda_graph!r}, recompute={recompute!r}")
        self.recompute, self.cuda_graph = recompute, cuda_graph
        if l_max is not None and (not isinstance(l_max, int) or l_max < 1):
            raise ValueError(f"l_max: expected None or a positive integer, got {l_max!r}")
        if kernel.channels != kernel_channels(channels, bidirectional):
            raise ValueError(f"kernel.channels: expected {kernel_channels(channels, bidirectional)} for channels="
                             f"{channels}, bidirectional={bidirectional}; got {kernel.channels}")
        self.kernel, self.H, self.channels = kernel, kernel.H, channels
        self.bidirectional, self.l_max = bidirectional, l_max
        self.D = nn.Parameter(torch.randn(channels, self.H))
        self.activation, self.dropout, self.output = output_stage(channels, self.H, activation, output, dropout,
                                                                  tie_dropout)
        self.activation_name, self.output_name = activation, output
        if not isinstance(conv_dropout, bool):
            raise ValueError(f"conv_dropout: expected a bool, got {conv_dropout!r}")
        self.conv_dropout = make_dropout(dropout) if conv_dropout else nn.Identity()  # element-wise, as the official
        self._step = Derived()  # the recurrence for stepping, discretized again when a kernel parameter changes
        self._step_form: tuple | None = None  # (recurrence, its (M, b, c) for ops.ssm_step)
        self._graphed_parts, self._cached_parts, self._graphed_layer = GraphedParts(), CachedParts(), GraphedLayer()
        self._stacked_parts = StackedParts()  # used when this layer is the first of a group (layers/stack_parts.py)
        # step() on the GPU path writes the next state into the state given and returns that tensor: for loops that
        # own their states (models.generate sets it while it runs), saving a copy per layer and token
        self.step_in_place = False

    # -- input checks ----------------------------------------------------------------------------------------------
    def _check_input(self, u) -> None:
        """No bound from l_max here: the kernel is defined at every length (S4's longer kernels through its plain C),
        and a kernel that is not (DSS-softmax's normalizer, SGConv's kernel) refuses a longer L itself."""
        check_input(u, self.H, None, self.D.dtype)

    def _check_state(self, state, batch: int) -> None:
        check_state(state, (batch,) + self.kernel.state_shape, self.bidirectional)

    _check_rate = staticmethod(check_rate)

    # -- views -----------------------------------------------------------------------------------------------------
    def forward(self, u: torch.Tensor, state: torch.Tensor | None = None, rate: float = 1.0, lengths=None, *,
                sequence_group=None):
        """u (B, L, H) -> (y (B, L, H), next_state or None). With ``state``, u is a chunk continuing that state.
        lengths (B,): a suffix-padded batch; the input beyond each length is zeroed, so no kernel reads padding.
        sequence_group: a process group over which one sequence is split, u this rank's part
        (layers/sequence_parallel.py)."""
        self._check_input(u)
        self._check_rate(rate)
        u = mask_padding(u, lengths, state is not None)
        B, L, _ = u.shape
        if state is not None:
            self._check_state(state, B)
        split = sequence_group is not None and dist.get_world_size(sequence_group) > 1
        if split:
            self._check_splittable(state)
        elif state is None:
            return self._whole(u, rate), None
        next_state = None
        with autocast_off(u.device.type):
            x = u.transpose(1, 2).to(self.kernel.real_dtype)  # (B, H, L)
            y = self._fft_features(x, self.kernel(L, rate))
            if state is not None:
                y_state, next_state = self.kernel.recurrence(rate).forward_state(x, state.to(y.dtype.to_complex()))
                y = y + y_state
            else:  # split: what the earlier ranks' states add (layers/sequence_parallel.py)
                system = self.kernel.recurrence(rate)
                y = y + system.carried_output(incoming_state(system, system.end_state(x), L, sequence_group), L)
        return self._output(y.to(u.dtype)), next_state

    def _fft_features(self, x: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """K ∗ x + D x by FFT (the anti-causal half too for a bidirectional layer): x (B, H, L) -> (B, C, H, L)."""
        C = self.channels
        k, k_rev = (K[:C], K[C:]) if self.bidirectional else (K, None)
        return fftconv(x, k, k_rev) + self.D.to(x.dtype)[..., None] * x[:, None]

    def _whole(self, u: torch.Tensor, rate: float, chunked: bool | None = None, graph: bool = True,
               eager: bool = False) -> torch.Tensor:
        """forward(u) without a state: the parameter side once (the chunk matrices, or the kernel for the FFT), then
        the input side; with ``recompute``, the input side runs in slices of the batch under activation
        checkpointing, so that only u is kept for backward and the activations of one slice at a time are recomputed
        there (the parameter side is not recomputed). chunked: the path (default: _chunked's choice). With
        ``cuda_graph``, in CUDA training, all of it replays from the layer's graphs (layers/cuda_graphs.py), whose
        capture calls this with graph=False and eager=True (the chunk matrices formed in the captured function
        itself, not from their own graphs)."""
        if graph and self.cuda_graph and GraphedLayer.usable(self, u):
            return self._graphed_layer(self, u, rate)
        chunked = self._chunked(u) if chunked is None else chunked
        with autocast_off(u.device.type):
            mats = self._chunk_matrices(rate, eager) if chunked else (self.kernel(u.shape[1], rate),)
        apply = self._chunked_apply if chunked else self._fft_apply
        rows = self._recompute_rows(u)
        if rows is None:
            return apply(u, mats)
        return torch.cat([checkpoint(apply, part, mats, use_reentrant=False) for part in u.split(rows)])

    def _recompute_rows(self, u: torch.Tensor) -> int | None:
        """Batch rows per recomputed slice (None: no recomputation). recompute=True: about RECOMPUTE_ELEMENTS inputs
        per slice, so a slice's activations stay small while its kernels still fill a GPU."""
        if not self.recompute or not torch.is_grad_enabled():
            return None
        if self.recompute is True:
            return min(u.shape[0], max(1, RECOMPUTE_ELEMENTS // (u.shape[1] * u.shape[2])))
        return min(u.shape[0], self.recompute)

    def _fft_apply(self, u: torch.Tensor, mats: tuple[torch.Tensor]) -> torch.Tensor:
        """The input side of forward(u) by FFT: u (B, L, H), mats (K,) -> y (B, L, H)."""
        with autocast_off(u.device.type):
            y = self._fft_features(u.transpose(1, 2).to(self.kernel.real_dtype), mats[0])
        return self._output(y.to(u.dtype))

    def _check_splittable(self, state) -> None:
        """A part of a sequence split over ranks: a causal layer whose kernel is its recurrence's, no carried state."""
        if state is not None or self.bidirectional or not getattr(self.kernel, "chunkable", False):
            what = ("a carried state" if state is not None else "a bidirectional layer" if self.bidirectional
                    else f"a {type(self.kernel).__name__}, whose kernel is not its recurrence's")
            raise ValueError(f"sequence_group: splitting a sequence over ranks needs a causal SSM layer with a "
                             f"state-passing kernel and no carried state; got {what}")

    def _chunked(self, u: torch.Tensor) -> bool:
        """Whether forward takes the chunked convolution for u: see _chunked_on."""
        return self._chunked_on(u.device)

    def _chunked_on(self, device: torch.device) -> bool:
        """Whether forward takes the chunked convolution on device: a kernel whose recurrence is its convolution, in
        float32, with at most 128 real state dimensions (its matrices fit the kernels' tiles), where the chunk scan
        runs in Triton (CUDA); elsewhere the FFT is the faster path."""
        return (getattr(self.kernel, "chunkable", False) and self.kernel.real_dtype == torch.float32
                and 2 * self.kernel.N2 <= 128 and backend("chunk_scan", device) == "triton")

    def _fused_chunks(self) -> bool:
        """Whether the chunked path runs as one fused op with the activation (ops.chunkconv_act): one output channel
        and an activation it fuses."""
        return self.channels == 1 and self.activation_name in FUSED_ACTIVATIONS

    def _chunk_matrices(self, rate: float, eager: bool = False) -> tuple[torch.Tensor, ...]:
        """The parameter side of the chunked convolution, in float32: the fused op's parts (ToepT, Win, WoutT, A per
        part; graphed in GPU training, cached without gradients, layers/chunk_parts.py), or for the general op the
        ChunkSystems' (Kt, Win, Wout, A), causal part first. eager: always formed anew. Inside stacked_parts the
        fused op's parts may come from the build of the layer's whole group (layers/stack_parts.py)."""
        if self._fused_chunks():
            shared = None if eager else group_parts(self, rate)
            if shared is not None:
                return shared
            make = (build_parts if eager else self._graphed_parts if GraphedParts.usable(self.kernel, self.D) else
                    self._cached_parts if CachedParts.usable(self.kernel, self.D) else build_parts)
            return make(self.kernel, self.D, self.bidirectional, rate)
        C, system = self.channels, self.kernel.recurrence(rate)
        if not self.bidirectional:
            systems = [system.chunks(CHUNK, slice(0, C))]
        else:  # the anti-causal half: a strictly causal SSM read backwards, from the same powers
            both = system.chunks(CHUNK, slice(0, 2 * C), delay=(False,) * C + (True,) * C)
            systems = [both.channels(slice(0, C)), both.channels(slice(C, 2 * C))]
        return tuple(t for s in systems for t in (s.Kt, s.Win, s.Wout, s.A))

    def _chunked_apply(self, u: torch.Tensor, mats: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The input side of forward(u) by the chunked convolution: u (B, L, H) -> y (B, L, H)."""
        B, L, H = u.shape
        parts = [mats[4 * k:4 * k + 4] for k in range(len(mats) // 4)]
        # under autocast the products within chunks may run in TF32 (ops.chunkconv_act): finer than the autocast's own;
        # and where a Linear follows, the op writes the dtype it will read (no cast of the activations in between)
        autocast = torch.is_autocast_enabled(u.device.type)
        precision = "tf32" if autocast else "float32"
        out_dtype = torch.get_autocast_dtype(u.device.type) if autocast and self.output_name != "none" else None
        drop_first = self._drops_conv()  # then the fused op stops at K ∗ u + D u, and the dropout and act follow
        with autocast_off(u.device.type):
            if self._fused_chunks():  # act(K ∗ u + D u) batch-first in one op
                y = chunkconv_act(u, [ChunkPart(*p, reverse=k == 1) for k, p in enumerate(parts)],
                                  "id" if drop_first else self.activation_name, precision,
                                  None if drop_first else out_dtype)
            else:  # K ∗ u + D u channel-major, the anti-causal half on the reversed input
                x = u.permute(2, 0, 1).to(self.kernel.real_dtype).contiguous()  # (H, B, L)
                y = chunkconv(x, *parts[0], self.D.to(x.dtype))  # (H, B, L, C)
                if self.bidirectional:
                    y = y + chunkconv(x.flip(-1), *parts[1]).flip(2)
                y = y.permute(1, 2, 3, 0).reshape(B, L, self.channels * H)
        if self._fused_chunks():  # the output map on the (B·L, H) view of the result: one GEMM with its bias fused
            if drop_first:
                y = self.activation(self.conv_dropout(y.to(u.dtype)))
            elif out_dtype is None:
                y = y.to(u.dtype)
            y = self.dropout(y)
            if self._fused_output():  # ops.linear_glu takes the rows of (B, L, H) itself
                return self._output_map(y)
            return self._output_map(y.reshape(B * L, -1)).reshape(B, L, -1)
        return self._output_features(y.to(u.dtype))

    def _output(self, y: torch.Tensor) -> torch.Tensor:
        """(B, C, H, L) -> (B, L, H): activation, dropout, output map. The features are laid out batch-first once, here:
        the output map would copy them anyway, and elementwise backward passes on a permuted view beside a contiguous
        gradient take the strided path (GELU's backward 20 ms instead of 2.5 at B=50, L=784, H=64 on 2 CPU cores)."""
        B, C, H, L = y.shape
        return self._output_features(y.permute(0, 3, 1, 2).reshape(B, L, C * H).contiguous())

    def _output_features(self, y: torch.Tensor) -> torch.Tensor:
        """(B, L, C·H) -> (B, L, H): (conv dropout,) activation, dropout, output map."""
        return self._output_map(self.dropout(self.activation(self.conv_dropout(y))))

    def _drops_conv(self) -> bool:
        """Whether a dropout acts before the activation now (conv_dropout, a rate above 0, training)."""
        return self.training and not isinstance(self.conv_dropout, nn.Identity)

    def _output_map(self, y: torch.Tensor) -> torch.Tensor:
        """The output map of (..., C·H) features; ``glu`` as one op, the Linear and the gate together (ops.linear_glu:
        on the GPU one launch at a token step, and a Triton forward with the gate fused in float32 training). It reads
        the Linear's parameters directly, so forward hooks on ``self.output`` do not fire; a Linear replaced by another
        module (quantized, say) runs as that module."""
        if self._fused_output():
            return linear_glu(y, self.output[0].weight, self.output[0].bias)
        return self.output(y)

    def _fused_output(self) -> bool:
        """Whether the output map runs as ops.linear_glu: ``glu`` whose Linear is a plain nn.Linear."""
        return self.output_name == "glu" and type(self.output[0]) is nn.Linear

    def default_state(self, batch_size: int) -> torch.Tensor:
        """The zero state: (batch, H, N/2) complex."""
        if self.bidirectional:
            raise ValueError("default_state: a bidirectional layer has no recurrent view (its kernel reads future "
                             "inputs)")
        check_batch_size(batch_size)
        return self.kernel.default_state(batch_size)

    def setup_step(self, rate: float = 1.0) -> None:
        """Discretize once for stepping. step() reuses it until a kernel parameter changes (in place, by an optimizer
        step, by load_state_dict, or by a move to another device or dtype: layers/param_versions.py), and then
        discretizes again."""
        self._check_rate(rate)
        if self.bidirectional:
            raise ValueError("setup_step: a bidirectional layer has no recurrent view")
        self._step.set(self._parameter_key(rate), self._discretized(rate))

    def _parameter_key(self, rate: float) -> tuple:
        return (rate,) + values_key(list(self.kernel.parameters()) + list(self.kernel.buffers()))

    def _recurrence(self, rate: float):
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.kernel.parameters()):
            return self.kernel.recurrence(rate)  # a fresh graph: gradients flow through the steps
        if self._step.key is None or self._step.key[0] != rate:
            self.setup_step(rate)  # checks the rate and direction
        return self._step.get(lambda: self._parameter_key(rate), lambda: self._discretized(rate))

    @torch.no_grad()
    def _discretized(self, rate: float):
        return self.kernel.recurrence(rate)

    def step(self, u: torch.Tensor, state: torch.Tensor, rate: float = 1.0):
        """One sample of the recurrence: u (B, H), state (B, H, N/2) -> (y (B, H), next state)."""
        if self.bidirectional:
            raise ValueError("step: a bidirectional layer has no recurrent view (its kernel reads future inputs)")
        check_step_input(u, self.H, self.D.dtype)
        self._check_state(state, u.shape[0])
        self._check_rate(rate)
        if self._fused_step(u):
            return self._step_fused(u, state, rate)
        with autocast_off(u.device.type):
            x = u.to(self.kernel.real_dtype)
            y, next_state = self._recurrence(rate).step(state.to(complex_dtype(x.dtype)), x)
            y = y + self.D.to(x.dtype) * x[:, None]  # (B, C, H)
        return self._output(y[..., None].to(u.dtype))[:, 0], next_state

    def _fused_step(self, u: torch.Tensor) -> bool:
        """Whether step takes ops.ssm_step: one output channel, an activation it fuses, float32, at most 128 real state
        dimensions (the S × S matrix of a channel is one tile), no gradient to the kernel (generation), and a Triton
        backend for it (CUDA)."""
        training = torch.is_grad_enabled() and any(p.requires_grad for p in self.kernel.parameters())
        return (self.channels == 1 and self.activation_name in FUSED_ACTIVATIONS and not training
                and not self._drops_conv()
                and self.kernel.real_dtype == torch.float32 and 2 * self.kernel.N2 <= 128
                and backend("ssm_step", u.device) == "triton")

    def _step_fused(self, u: torch.Tensor, state: torch.Tensor, rate: float):
        rec = self._recurrence(rate)
        if self._step_form is None or self._step_form[0] is not rec:
            with torch.no_grad():
                diagonal = getattr(rec, "diagonal_step_form", None)  # S/2 complex products instead of S² (ops.step)
                M, b, c = diagonal() if diagonal else rec.real_step_form()
                self._step_form = (rec, (M, b, c[0]))
        with autocast_off(u.device.type):
            z = torch.view_as_real(state.to(torch.complex64)).flatten(-2)  # (B, H, N) interleaved, no copy
            out = z if self.step_in_place and state.dtype == torch.complex64 else None
            y, z = ssm_step(z, u.float(), *self._step_form[1], self.D[0].float(), self.activation_name, out)
        y = self._output_map(self.dropout(y.to(u.dtype)))
        return y, torch.view_as_complex(z.unflatten(-1, (-1, 2)))
