"""A whole model's forward and backward in CUDA training, replayed from two CUDA graphs per batch shape.

A training step of a model built from many small layers launches a few thousand kernels (SaShiMi at SC09 size:
~2,100 launches for ~80 ms of kernels, in a step of 92-128 ms on the hosts measured), so the GPU waits on the host.
Per-layer graphs (SSMConv's ``cuda_graph``) replay only the SSM layers; ``ModelGraphs(model)`` replays everything
between the input and the output, norms, pools, feed-forward blocks and embeddings included, in two launches:

    forward = ModelGraphs(model)          # keeps no copy of the model; its state dict stays the model's
    for x, y in batches:                  # batches of one shape (a last, smaller one takes a second graph)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = criterion(forward(x), y)
        loss.backward()
        optimizer.step(); optimizer.zero_grad()

The loss, the optimizer and clipping run eagerly. A capture is made per (input shapes and dtypes, autocast state,
parameter storage): the first call of a shape warms it up and captures (a few seconds for SaShiMi), later calls of
that shape replay. Outside CUDA training (evaluation, no gradient, a CPU, a compiler trace) the model runs as itself.
The output is the graph's own buffer, rewritten by the next replay; while the backward of an earlier call is still
to come, a call runs eagerly (layers/cuda_graphs.py Replays). Batches whose shape keeps changing (padded batches cut
to their longest sequence, trim_padding) would capture at every step: after MAX_CAPTURES captures the model runs
eagerly, with one warning. The model's forward must not wait on the device (no .item(), no shape read from values)
and must draw its random numbers from PyTorch's generator (dropout); where the capture fails, the model runs eagerly
from then on, with one warning.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from ..layers import cuda_graphs
from ..layers.cuda_graphs import Replays, layers_inline, storage_key


class _Call(nn.Module):
    """model(*inputs) as a module over the model's own parameters (shared, not copied)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        return self.model(*inputs)


class ModelGraphs:
    """``ModelGraphs(model)(x[, lengths])`` is ``model(x[, lengths])``, replayed from CUDA graphs in CUDA training
    (module docstring)."""

    KEEP = 2  # shapes kept: a training set's batches and its last, smaller one
    MAX_CAPTURES = 8

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise TypeError(f"ModelGraphs: expected the model (a torch.nn.Module), got {type(model).__name__}")
        self.model, self.replays, self.captures, self.off = model, Replays(self.KEEP), 0, False

    @staticmethod
    def runs_on(device: torch.device) -> bool:
        """Whether the graphs run on this device at all (a CUDA GPU)."""
        return device.type == "cuda"

    @staticmethod
    def usable(model: nn.Module, x: torch.Tensor) -> bool:
        """CUDA training of a model with trained parameters, outside another capture or a compiler trace."""
        return (x.is_cuda and model.training and torch.is_grad_enabled()
                and any(p.requires_grad for p in model.parameters())
                and not torch.cuda.is_current_stream_capturing() and not torch.compiler.is_compiling())

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        inputs = (x,) if lengths is None else (x, lengths)
        if self.off or not self.usable(self.model, x):
            return self.model(*inputs)
        params = list(self.model.parameters())
        key = tuple((tuple(t.shape), t.dtype, t.requires_grad) for t in inputs) + (
            torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")) + storage_key(params)
        if key in self.replays:
            self.replays.use(key)
        else:
            if self.captures == self.MAX_CAPTURES:
                return self._give_up(inputs, f"{self.captures} captures: the batches keep changing shape (fixed-"
                                             "length batches, trim_padding=false, let the graphs serve)")
            try:
                with layers_inline():
                    run = cuda_graphs.graphed(_Call(self.model), inputs)
            except RuntimeError as e:
                return self._give_up(inputs, f"the capture failed ({e})")
            self.captures += 1
            self.replays.add(key, run)
        if self.replays.waiting(key):  # the backward of an earlier call still needs the graph's activations
            return self.model(*inputs)
        return self.replays.replay(key, *inputs, *params)

    def _give_up(self, inputs, why: str):
        self.off = True
        self.replays = Replays(self.KEEP)  # the graphs' memory back
        warnings.warn(f"ModelGraphs: {why}; running the model eagerly from now on", stacklevel=3)
        return self.model(*inputs)
