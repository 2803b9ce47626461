"""The matrices of a layer's chunked convolution (ops.ChunkPart: Toep(K)ᵀ, Win, Woutᵀ, A per part) from its
parameters — in GPU training replayed as two CUDA graphs (forward and backward) instead of a few hundred launches.

The matrices depend on the SSM parameters, D and the rate only (not on the input), and forming them is many small
batched operations (S4: discretization by Woodbury, C from C̃ by a solve, powers of Ā by doubling): at short lengths
their launches and Python overhead cost more than the convolution. torch.cuda.make_graphed_callables captures that
function once per (rate, parameter storage); an optimizer's in-place updates are read by the replays, and a new storage
(a move to another device or dtype, a reassigned parameter) captures again. Where capture fails the eager function is
used, with one warning. Without gradients (inference, a diffusion model's hundreds of denoising passes) the matrices
of the last call are reused while the parameters stay the same tensors at the same version (CachedParts).
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from .cuda_graphs import PerLayer, graphed, layer_graphs_allowed, storage_key
from .param_versions import values_key

CHUNK = 64  # steps per chunk: T + 2N multiply-adds per sample for the products, N²/T for the scan


def build_parts(kernel: nn.Module, D: torch.Tensor, bidirectional: bool, rate: float) -> tuple[torch.Tensor, ...]:
    """(ToepT, Win, WoutT, A) of the causal part, then those of the anti-causal part for a bidirectional layer."""
    system, D = kernel.recurrence(rate), D.to(kernel.real_dtype)
    if not bidirectional:
        parts = [system.chunks(CHUNK, slice(0, 1)).part(D)]
    else:  # one set of powers for the two halves
        both = system.chunks(CHUNK, slice(0, 2), delay=(False, True))
        parts = [both.channels(slice(0, 1)).part(D), both.channels(slice(1, 2)).part(reverse=True)]
    return tuple(t for p in parts for t in (p.ToepT, p.Win, p.WoutT, p.A))


class _Builder(nn.Module):
    """build_parts as a module over the layer's own kernel and D (shared, not copied), called through
    torch.func.functional_call with placeholder parameters while captured."""

    def __init__(self, kernel: nn.Module, D: nn.Parameter, bidirectional: bool, rate: float):
        super().__init__()
        self.kernel, self.D, self.bidirectional, self.rate = kernel, D, bidirectional, rate

    def forward(self, _token: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return build_parts(self.kernel, self.D, self.bidirectional, self.rate)


def parts_tensors(kernel: nn.Module, D: torch.Tensor) -> list[torch.Tensor]:
    """The tensors build_parts reads: the kernel's parameters and buffers, and D."""
    return [*kernel.parameters(), *kernel.buffers(), D]


def _parameters_key(kernel: nn.Module, D: torch.Tensor, bidirectional: bool, rate: float, values: bool) -> tuple:
    """What the matrices depend on: rate, direction, and each parameter's storage; with ``values``, also whether the
    parameters changed since (layers/param_versions.py)."""
    tensors = parts_tensors(kernel, D)
    return (rate, bidirectional) + (values_key(tensors) if values else storage_key(tensors))


class CachedParts(PerLayer):
    """Per layer, without gradients: build_parts of the last call, reused while the parameters are unchanged (their
    storage and version, and no optimizer step since: layers/param_versions.py)."""

    def __init__(self):
        self.key, self.parts = None, None

    @staticmethod
    def usable(kernel: nn.Module, D: torch.Tensor) -> bool:
        """No gradient wanted, outside a capture or a compiler trace, and parameters that count versions (not
        inference-mode tensors)."""
        return (not torch.is_grad_enabled() and not D.is_inference() and not torch.compiler.is_compiling()
                and not (D.is_cuda and torch.cuda.is_current_stream_capturing()))

    def __call__(self, kernel: nn.Module, D: torch.Tensor, bidirectional: bool, rate: float):
        key = _parameters_key(kernel, D, bidirectional, rate, values=True)
        if key != self.key:
            self.parts, self.key = build_parts(kernel, D, bidirectional, rate), key
        return self.parts


class GraphedParts(PerLayer):
    """Per layer: the graphed builder for the current (rate, parameter storage), captured on first use."""

    def __init__(self):
        self.key, self.builder, self.failed, self._module = None, None, False, None

    @staticmethod
    def trains(kernel: nn.Module, D: torch.Tensor) -> bool:
        """CUDA training outside a compiler trace: where the matrices are formed at every step (graphed, or inline
        inside a whole model's capture)."""
        tensors = list(kernel.parameters()) + [D]
        return (D.is_cuda and torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
                and not torch.compiler.is_compiling())

    @classmethod
    def usable(cls, kernel: nn.Module, D: torch.Tensor) -> bool:
        """CUDA training outside another capture (or a whole model's: cuda_graphs.layers_inline) or a compiler
        trace."""
        return cls.trains(kernel, D) and layer_graphs_allowed()

    def __call__(self, kernel: nn.Module, D: nn.Parameter, bidirectional: bool, rate: float):
        if self.failed:
            return build_parts(kernel, D, bidirectional, rate)
        key = _parameters_key(kernel, D, bidirectional, rate, values=False)
        if key != self.key:
            self.builder = self._capture(kernel, D, bidirectional, rate)
            self.key = key
        if self.builder is None:
            return build_parts(kernel, D, bidirectional, rate)
        return self.builder(*(p for _, p in self._module.named_parameters()))

    def _capture(self, kernel, D, bidirectional, rate):
        """Graphs of build_parts (cuda_graphs.graphed), float32 whatever the caller's autocast; None where capture
        fails (then the eager function, with one warning)."""
        self._module = builder = _Builder(kernel, D, bidirectional, rate)
        token = torch.zeros(1, device=D.device)  # the module's input: it reads only its parameters
        try:
            with torch.autocast("cuda", enabled=False):
                graph = graphed(builder, (token,), keep_inputs=True)
            return lambda *params: graph(token, *params)
        except RuntimeError as e:
            self.failed = True
            warnings.warn(f"SSM layer: the chunk matrices could not be captured as a CUDA graph ({e}); forming them "
                          "eagerly", stacklevel=4)
            return None
