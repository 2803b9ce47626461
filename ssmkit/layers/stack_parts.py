"""The chunk matrices of a stack of like SSM layers formed together, in GPU training.

Each SSM layer on the chunked path forms its matrices (ops.ChunkPart: Toep(K)ᵀ, Win, Woutᵀ, A) from its parameters
at every training step: for S4 a few hundred small batched operations (Woodbury, C from C̃ by a solve, powers of Ā
by doubling), forward and backward, replayed from two CUDA graphs per layer (layers/chunk_parts.py). Each of those
kernels works on tiny tensors, and a model repeats them in every layer: in a 6-layer LRA model they are most of a
step's ~3,300 kernels.

Layers of the same kind and configuration (same kernel class, options and parameter shapes, same direction, device
and dtype) compute the same function of their parameters. Under ``stacked_parts(model)`` the first such layer that
asks for its matrices forms those of its whole group at once: the layers' parameters stacked along a new leading
axis, build_parts mapped over it by torch.func.vmap (each operation one kernel for the group), replayed from one pair
of CUDA graphs per group; every layer takes its slice, and the gradients flow back to each layer's own parameters.
The values are those of the layers' own builds (vmap batches the same operations). SequenceModel, Sashimi, SSSD and
ViS4mer enter it in their forward; a model of one's own can too:

    with ssmkit.stacked_parts(model):
        loss = criterion(model(x), y)
    loss.backward()

Outside training on CUDA (no gradient, a CPU, torch.compile), and for layers that replay whole (``cuda_graph``), a
layer forms its own matrices as before. Inside a whole model's CUDA graph (train/model_graphs.py) each group's
build runs inline, captured into the model's graph. Two things differ from each layer forming its own: a layer of a
group that a forward does not call still gets a gradient (zeros) rather than none; and under DistributedDataParallel
a group's gradients are all ready only when the backward reaches the group's build, after the first layer's, so
their all-reduce overlaps less with the backward.
"""
from __future__ import annotations

import contextlib
import contextvars
import warnings

import torch
from torch import nn

from ..ops.dispatch import recording
from .chunk_parts import GraphedParts, _Builder, parts_tensors
from .cuda_graphs import PerLayer, graphed, layer_graphs_allowed, storage_key
from .param_versions import values_key

_ACTIVE: contextvars.ContextVar["_Stack | None"] = contextvars.ContextVar("ssmkit_stacked_parts", default=None)
_SIMPLE = (bool, int, float, str, type(None))


@contextlib.contextmanager
def stacked_parts(model: nn.Module, enabled: bool = True):
    """Within this context the like SSM layers of ``model`` form their chunk matrices as one group (module docstring).
    Nested contexts keep the outermost; ``enabled=False`` turns the grouping off for everything inside. Without
    gradients (each layer reuses its cached matrices then) and while torch.compile, an export or the JIT tracer
    records, it does nothing. Inside a whole model's CUDA graph (cuda_graphs.layers_inline) each group's build runs
    inline, captured into the model's graph."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"stacked_parts: expected the model (a torch.nn.Module), got {type(model).__name__}")
    if _ACTIVE.get() is not None or not torch.is_grad_enabled() or recording():
        yield
        return
    token = _ACTIVE.set(_Stack(model if enabled else None))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def group_parts(layer: nn.Module, rate: float) -> tuple[torch.Tensor, ...] | None:
    """The layer's matrices from its group's build, or None where it forms its own (no active context, no group)."""
    stack = _ACTIVE.get()
    return None if stack is None else stack.parts(layer, rate)


def _signature(layer: nn.Module) -> tuple | None:
    """What build_parts computes from, besides the parameter values: the layer's and kernel's classes, the kernel's
    plain options, the direction, and every parameter's and buffer's name, shape, dtype, device and requires_grad.
    None for a kernel with anything else in it (a plain tensor attribute, a submodule): its layers stay on their own."""
    kernel = layer.kernel
    if kernel._modules:
        return None
    options = []
    for name, value in sorted(vars(kernel).items()):
        if name.startswith("_") or name == "training":
            continue
        if isinstance(value, tuple) and all(isinstance(v, _SIMPLE) for v in value) or isinstance(value, _SIMPLE):
            options.append((name, value))
        else:
            return None
    tensors = [(n, t.shape, t.dtype, t.device, t.requires_grad) for n, t in kernel.named_parameters()]
    tensors += [(n, t.shape, t.dtype, t.device) for n, t in kernel.named_buffers()]
    D = layer.D
    return (type(layer), type(kernel), layer.bidirectional, tuple(options), tuple(tensors),
            (D.shape, D.dtype, D.device, D.requires_grad))


def _groups(model: nn.Module) -> dict[int, tuple[nn.Module, ...]]:
    """id(layer) -> its group (two or more layers with one signature), for the layers of model that would form their
    matrices through GraphedParts now."""
    from .conv import SSMConv  # it imports this module
    by_signature: dict[tuple, list[nn.Module]] = {}
    seen: set[int] = set()
    for module in model.modules():
        if not isinstance(module, SSMConv) or not eligible(module) or id(module.kernel) in seen:
            continue
        seen.add(id(module.kernel))  # a kernel shared by two layers joins a group once; the other layer forms its own
        signature = _signature(module)
        if signature is not None:
            by_signature.setdefault(signature, []).append(module)
    return {id(layer): tuple(group) for group in by_signature.values() if len(group) > 1 for layer in group}


class _Stack:
    """A context's groups and their matrices, built on the first request of each (group, rate) and built again once a
    backward pass has gone through them or a parameter of the group has changed (a context that spans several
    training steps)."""

    def __init__(self, model: nn.Module | None):
        self.model, self.groups, self.built = model, None, {}

    def parts(self, layer: nn.Module, rate: float):
        if self.model is None:
            return None
        if self.groups is None:
            self.groups = _groups(self.model)
        group = self.groups.get(id(layer))
        if group is None:
            return None
        key = (id(group[0]), rate)
        entry = self.built.get(key)
        # the parameters' values are compared only when a layer asks again (a shared layer, or a context over several
        # forwards): one comparison per request would read every tensor of the group for each of its layers
        if (entry is None or entry.spent
                or id(layer) in entry.taken and entry.values != values_key(_tensors(group))):
            entry = self.built[key] = _Built(group[0]._stacked_parts(group, rate), values_key(_tensors(group)))
        if entry.slices is None:
            return None
        entry.taken.add(id(layer))
        index = next(i for i, member in enumerate(group) if member is layer)
        return tuple(t[index] for t in entry.slices)


class _Built:
    """A group's matrices (each layer's slice), the parameter values they were formed from, the layers that took
    their slice, and whether a backward pass has used them (autograd frees a graph after its backward)."""

    def __init__(self, out: tuple[torch.Tensor, ...] | None, values: tuple):
        self.slices = None if out is None else [t.unbind(0) for t in out]
        self.values, self.spent, self.taken = values, False, set()
        for t in out or ():
            if t.requires_grad:
                t.register_hook(self._spend)

    def _spend(self, grad: torch.Tensor) -> None:
        self.spent = True


def _tensors(layers) -> list[torch.Tensor]:
    """The tensors a group's build reads: each layer's (chunk_parts.parts_tensors)."""
    return [t for l in layers for t in parts_tensors(l.kernel, l.D)]


class StackBuilder(nn.Module):
    """build_parts of every layer of a group at once: their parameters (and buffers) stacked along a new leading axis,
    one layer's build mapped over it by torch.func.vmap. The layers' parameters are its own (shared, not copied)."""

    def __init__(self, layers, rate: float):
        super().__init__()
        self.builders = nn.ModuleList(_Builder(l.kernel, l.D, l.bidirectional, rate) for l in layers)

    def forward(self, token: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # each layer's tensors by name, D read from the builder itself: under torch.func.functional_call over plain
        # tensors (torch.func's transforms, a capture's placeholders) D is such a tensor, which a module keeps as a
        # plain attribute, not a parameter, and named_parameters() would leave it out (the first layer's D then served
        # all)
        tensors = [dict(b.kernel.named_parameters(prefix="kernel")) | dict(b.kernel.named_buffers(prefix="kernel"))
                   | {"D": b.D} for b in self.builders]
        stacked = {name: torch.stack([t[name] for t in tensors]) for name in tensors[0]}
        first = self.builders[0]
        return torch.func.vmap(lambda p: torch.func.functional_call(first, p, (token,)))(stacked)


class StackedParts(PerLayer):
    """Kept by a group's first layer: the group's StackBuilder replayed from CUDA graphs, captured again when the
    group, the rate, a parameter (a new tensor, as load_state_dict(assign=True) makes) or its storage changes; on a
    CPU, and inside a whole model's capture (cuda_graphs.layer_graphs_allowed), the StackBuilder itself. Where the
    capture or the stacked build fails it answers None from then on, and each layer forms its own matrices (from its
    own graphs), with one warning."""

    def __init__(self):
        self.key, self.run, self.params, self.unusable, self.token = None, None, None, False, None

    def __call__(self, layers, rate: float) -> tuple[torch.Tensor, ...] | None:
        if self.unusable:
            return None
        if self.token is None or self.token.device != layers[0].D.device:  # the builder's input, kept: a replay
            self.token = torch.zeros(1, device=layers[0].D.device)  # copies an input only where it is a new tensor
        token = self.token  # (the builder reads only its parameters)
        if not token.is_cuda or not layer_graphs_allowed():
            def inline():
                with torch.autocast(token.device.type, enabled=False):
                    return StackBuilder(layers, rate)(token)
            return self._attempt(inline)
        tensors = _tensors(layers)
        key = (tuple(id(l) for l in layers), rate) + tuple(id(t) for t in tensors) + storage_key(tensors)
        if key != self.key:
            builder = StackBuilder(layers, rate)

            def capture():
                with torch.autocast("cuda", enabled=False):
                    return builder, graphed(builder, (token,), keep_inputs=True)
            captured = self._attempt(capture)
            if captured is None:
                return None
            self.key, (builder, self.run) = key, captured
            self.params = list(builder.parameters())
        return self.run(token, *self.params)

    def _attempt(self, make):
        try:
            return make()
        except (RuntimeError, NotImplementedError) as e:
            self.unusable = True
            warnings.warn(f"SSM layers: the chunk matrices of like layers could not be formed together ({e}); each "
                          "layer forms its own", stacklevel=6)
            return None


def eligible(layer: nn.Module) -> bool:
    """Whether a layer forms its chunk matrices at every step now (CUDA training of a fused chunked layer that does not
    replay whole): from GraphedParts, or inline inside a whole model's capture."""
    return (layer._fused_chunks() and not layer.cuda_graph and layer._chunked_on(layer.D.device)
            and GraphedParts.trains(layer.kernel, layer.D))
