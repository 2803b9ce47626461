"""CUDA graphs of a layer's work in training: a captured function replays its forward and backward kernels in two
launches instead of hundreds, which matters where the launches and Python cost more than the kernels (short
sequences, small state, the parameter side of S4).

graphed() captures module(*inputs) over placeholders that share its parameters' storage
(torch.cuda.make_graphed_callables): the result is called with (*inputs, *parameters), copies the inputs in, replays,
and returns gradients for both. An optimizer's in-place updates are read by the replays; a new storage (a move, a
reassigned parameter) needs a new capture, which the callers key on. GraphedLayer graphs a whole SSM layer (chunk
matrices, convolution, activation, output map) for the shapes it is called with (SSMConv's ``cuda_graph`` option);
train/model_graphs.py a whole model.
Inside a whole model's capture (and its warm-up: ``layers_inline``) the layers' own graphs are off and their work is
captured inline: CUDA cannot capture a graph inside another's capture.
"""
from __future__ import annotations

import contextlib
import contextvars
import gc
import warnings
import weakref

import torch
import torch.nn.functional as F
from torch import nn


_INLINE: contextvars.ContextVar[bool] = contextvars.ContextVar("ssmkit_layers_inline", default=False)


@contextlib.contextmanager
def layers_inline():
    """Within, the layers' own graphs (GraphedLayer, chunk_parts.GraphedParts, stacked parts) stay off: a whole model
    is being warmed up for a capture, or captured, and their work goes into its graph."""
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


def layer_graphs_allowed() -> bool:
    """Whether a layer may capture or replay graphs of its own now: not while a stream captures, nor inside
    layers_inline."""
    return not _INLINE.get() and not (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector off during a CUDA graph capture, after one collection. PyTorch's capture no
    longer collects first (torch.compiler.config.force_cudagraph_gc, off by default), so a collection that the
    capture's own allocations trigger can free an earlier, unreachable CUDA graph inside the capture: CUDA refuses to
    destroy it while a stream captures ("operation not permitted when stream is capturing"), the capture is
    invalidated, and the random generator is left registered to it, so that every later random op in the process
    fails ("Offset increment outside graph capture"). Seen on an H200 in the GPU tests and in benchmarks/speed.py,
    where layers whose graphs were dropped preceded a capture."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def generator_restored_on_failure():
    """The CUDA random generator's state given back to it if a capture inside fails. A capture registers the
    generator with the graph and releases it when the capture ends; a capture that CUDA invalidated (a host sync
    inside, as a batched LU of MAGMA's) ends in an error before that release, which leaves the generator marked as
    capturing: every later random op of the process then fails ("Offset increment outside graph capture
    encountered unexpectedly"), the eager fallback's dropout and a script's next torch.randn included (seen on an
    H100 with experiment_throughput.py --graph bidmc). Its state, copied before the capture (a copy is not capturing),
    is put back in its place."""
    generator = torch.cuda.default_generators[torch.cuda.current_device()]
    saved = generator.clone_state()
    try:
        yield
    except BaseException:
        generator.graphsafe_set_state(saved)
        raise


def capture_stream() -> torch.cuda.Stream:
    """The stream torch.cuda.graph captures on when given none (made here if no capture has made it yet). Work that
    warms up a capture runs on it. cuBLAS keeps a workspace per (handle, stream), made at the first product on a
    stream; one first made inside a capture comes from that graph's private memory pool and is then served to every
    later product on the stream, the later graphs' captures included (pytorch/pytorch#193832 describes this pinning).
    What it did here: lra-listops under bf16 (cuBLASLt products) with cuda_graph took NaN gradients in its first layer
    only, the first one captured, at the first step of every fresh process (H100s, 8 runs of 8), as if the later
    layers' replays wrote into what the first graph keeps for its backward. A warm-up on this stream before the
    capture removed it (2 runs of 2); one on the caller's stream did not (1 of 1), nor does make_graphed_callables'
    own, on a new stream."""
    if torch.cuda.graph.default_capture_stream is None:
        torch.cuda.graph.default_capture_stream = torch.cuda.Stream()
    return torch.cuda.graph.default_capture_stream


@contextlib.contextmanager
def on_capture_stream():
    """Work that warms up a capture (Triton compilation, cuBLAS workspaces), run on the capture stream
    (capture_stream) after the caller's stream's queued work, and waited for by it."""
    stream = capture_stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        yield
    torch.cuda.current_stream().wait_stream(stream)


def _warm_up(function, args: tuple[torch.Tensor, ...]) -> None:
    """function(*args) and its backward once on the capture stream (on_capture_stream)."""
    with on_capture_stream():
        outputs = [o for o in torch.utils._pytree.tree_leaves(function(*args)) if o.requires_grad]
        wanted = [a for a in args if a.requires_grad]
        if outputs and wanted:
            torch.autograd.grad(outputs, wanted, [torch.zeros_like(o) for o in outputs], allow_unused=True)


class PerLayer:
    """State a layer keeps about its own parameters: a copied or unpickled layer starts without it (it would describe
    the original's parameters)."""

    def __deepcopy__(self, memo):
        return type(self)()

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.__init__()


def storage_key(tensors) -> tuple:
    """Each tensor's storage, dtype, device and whether it wants a gradient: what a capture is valid for."""
    return tuple((t.data_ptr(), t.dtype, t.device, t.requires_grad) for t in tensors)


class _OwnGradients(torch.autograd.Function):
    """The identity on some tensors, whose backward hands on a copy of each gradient. A graphed callable's backward
    returns its graph's static gradient buffers (detached views); a parameter whose .grad is None takes such a view
    over as its .grad, and the next replay rewrites it: with two micro-batches accumulated, .grad became twice the
    second one's gradient instead of the sum (pytorch/pytorch#181723). The copies are fresh_copies'."""

    @staticmethod
    def forward(ctx, *tensors):
        out = tuple(t.view_as(t) for t in tensors)
        ctx.mark_non_differentiable(*(o for o, need in zip(out, ctx.needs_input_grad) if not need))
        return out

    @staticmethod
    def backward(ctx, *grads):
        copies = iter(fresh_copies([g for g in grads if g is not None]))
        return tuple(None if g is None else next(copies) for g in grads)


def fresh_copies(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Contiguous copies of the tensors in new memory: per dtype and device, one allocation split into views and one
    multi-tensor copy (torch._foreach_copy_) where a clone of each is an allocation and a copy launch of its own (an
    S4 layer's graphed chunk matrices hand on seven gradients at every step)."""
    out: list[torch.Tensor | None] = [None] * len(tensors)
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.dtype, t.device), []).append(i)
    for (dtype, device), picks in groups.items():
        sizes = [tensors[i].numel() for i in picks]
        views = [piece.view(tensors[i].shape) for piece, i in
                 zip(torch.empty(sum(sizes), dtype=dtype, device=device).split(sizes), picks)]
        torch._foreach_copy_(views, [tensors[i] for i in picks])
        for view, i in zip(views, picks):
            out[i] = view
    return out


def graphed(module: nn.Module, inputs: tuple[torch.Tensor, ...], keep_inputs: bool = False):
    """module(*inputs) as a graphed callable of (*inputs, *module.parameters()) (module docstring), its forward captured
    under the caller's autocast state and its backward without autocast, as an eager step runs them (the forward in
    the autocast context, backward() after it), after a warm-up on the capture stream (capture_stream). Had the
    backward been captured inside the caller's autocast too, the float32 products of custom backwards would have run
    in bf16 (kernels/chunked.py's powers: S4's log Δ gradient 7× further from float32's than eager bf16's, one H100).
    Placeholders, not the parameters themselves: capturing over the parameters fails once an earlier backward has
    left their gradient accumulators on another stream. Each placeholder is a new leaf over its parameter's own
    storage (detach, not a copy): the graphs read the parameters where they are, and a replay, which copies an input
    only where its storage is not the captured one's, copies none of them (eight small copies per step for an S4
    layer's chunk matrices, each a launch and host time at L = 1k); a whole model's graphs hold no second copy of its
    parameters. A parameter changed in place between a call and its backward is read changed there (eager autograd
    refuses such a change; training changes parameters after the backward). The inputs are captured on copies, so
    that a function that changes its input in place changes the caller's tensor once per call, as it would eagerly,
    not also in the warm-up and the capture; keep_inputs captures on the given inputs themselves, for a caller that
    passes the same private tensor at every call (the chunk matrices' token), which then is never copied. The
    gradients it hands on, the inputs' and the parameters', are copies of the graph's buffers (_OwnGradients): an
    input may be a leaf, or reach one through views."""
    names = [n for n, _ in module.named_parameters()]
    k = len(inputs)
    autocast = dict(dtype=torch.get_autocast_dtype("cuda"), enabled=torch.is_autocast_enabled("cuda"))

    def function(*args):
        with torch.autocast("cuda", cache_enabled=False, **autocast):
            return torch.func.functional_call(module, dict(zip(names, args[k:])), args[:k])
    placeholders = tuple(p.detach().requires_grad_(p.requires_grad) for _, p in module.named_parameters())
    samples = tuple((x.detach() if keep_inputs else x.detach().clone()).requires_grad_(x.requires_grad)
                    for x in inputs)
    # S4's C̃ -> C solve: MAGMA's batched LU (PyTorch's default for these sizes) synchronizes and would invalidate the
    # capture; cuSOLVER's is stream-ordered (measured on an H100: the one fails, the other captures)
    library = torch.backends.cuda.preferred_linalg_library()
    torch.backends.cuda.preferred_linalg_library("cusolver")
    try:
        with torch.autocast("cuda", enabled=False), collector_paused():
            _warm_up(function, samples + placeholders)  # instead of make_graphed_callables' own, on a new stream
            with generator_restored_on_failure():
                run = torch.cuda.make_graphed_callables(function, samples + placeholders, num_warmup_iters=0)
    finally:
        torch.backends.cuda.preferred_linalg_library(library)
    return lambda *args: run(*_OwnGradients.apply(*args))


class _Whole(nn.Module):
    """A layer's forward(u) without a state, as a module over the layer's own parameters (shared, not copied)."""

    def __init__(self, layer: nn.Module, rate: float):
        super().__init__()
        self.layer, self.rate = layer, rate

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.layer._whole(u, self.rate, graph=False, eager=True)


def graph_length(L: int) -> int:
    """L rounded up to a multiple of a quarter of its octave (2^(⌊log2 L⌋ − 2), at least 1): at most four lengths per
    doubling, each at most 25 % above the lengths it serves (GraphedLayer)."""
    step = 1 << max(0, L.bit_length() - 3)
    return -(-L // step) * step


class Replays:
    """Graphed callables by key, the most recently used last, at most ``keep`` of them; and, per key, whether the
    backward of its last replay is still to come. A graph's backward reads the activations its last forward replay
    left inside it, so a caller runs eagerly while ``waiting(key)`` instead of replaying over them."""

    def __init__(self, keep: int):
        self.keep, self.graphs, self.pending = keep, {}, {}  # pending: key -> (weak ref to its node, [backward ran])

    def __contains__(self, key) -> bool:
        return key in self.graphs

    def use(self, key) -> None:
        self.graphs[key] = self.graphs.pop(key)  # the most recently used last

    def add(self, key, run) -> None:
        self.graphs[key] = run
        while len(self.graphs) > self.keep:
            oldest = next(iter(self.graphs))
            del self.graphs[oldest]
            self.pending.pop(oldest, None)

    def waiting(self, key) -> bool:
        node, ran = self.pending.get(key, (lambda: None, [True]))
        return node() is not None and not ran[0]

    def replay(self, key, *args):
        out = self.graphs[key](*args)
        y = next((t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)
                  and t.grad_fn is not None), None)
        if y is not None:
            ran = [False]
            y.register_hook(lambda grad, ran=ran: ran.__setitem__(0, True))  # runs as that backward begins
            try:  # the graph's node (a Python autograd.Function's) dies with an autograd graph dropped unused
                node = weakref.ref(y.grad_fn)
            except TypeError:  # a node that takes no weak reference: pending until its backward runs
                node = lambda: True  # noqa: E731
            self.pending[key] = (node, ran)
        return out


class GraphedLayer(PerLayer):
    """Per layer: its forward(u) and backward as CUDA graphs, one capture per (input shape, dtype, autocast state, rate,
    train/eval, parameter storage), the most recently used kept (two, so that a training set's last, smaller batch does
    not capture twice per epoch; four once lengths vary). The layer's output is the graph's own buffer (or a view of
    it), rewritten by the next replay of the same layer. A graph's backward reads the activations its last forward
    replay left inside it, so while an earlier call's backward is still to come (the layer called twice before one
    backward: a shared layer, two views of a batch in one loss) the layer runs eagerly instead of replaying over them.

    Lengths that vary (batches cut to their longest sequence, as the LRA loaders do) would capture at every new
    length. Once a layer has met a second length, a layer on the chunked path runs its graph at the length rounded up
    to a quarter of its octave (``graph_length``: at most 4 lengths per doubling, ≤ 25 % longer) with the input
    zero-padded at the end, and returns the first L steps: exact, since its output at step t reads the input at the
    other steps through a kernel that does not depend on L (a recurrence), and for a bidirectional layer the padded
    zeros add nothing to the anti-causal half. ListOps' batches (longest 1,500-2,000) then take 3 lengths."""

    KEEP, KEEP_VARYING = 2, 4

    def __init__(self):
        self.replays, self.failed = Replays(self.KEEP), False
        self.first_length, self.varying = None, False

    @staticmethod
    def usable(layer: nn.Module, u: torch.Tensor) -> bool:
        """CUDA training outside another capture or a compiler trace."""
        return (u.is_cuda and torch.is_grad_enabled() and any(p.requires_grad for p in layer.parameters())
                and layer_graphs_allowed() and not torch.compiler.is_compiling())

    def __call__(self, layer: nn.Module, u: torch.Tensor, rate: float) -> torch.Tensor:
        if self.failed:
            return layer._whole(u, rate, graph=False)
        L = u.shape[1]
        if self.first_length is None:
            self.first_length = L
        self.varying = self.varying or L != self.first_length
        padded = graph_length(L) if self.varying and layer._chunked(u) else L
        y = self._replay(layer, F.pad(u, (0, 0, 0, padded - L)) if padded > L else u, rate)
        return y[:, :L] if padded > L else y

    def _replay(self, layer: nn.Module, u: torch.Tensor, rate: float) -> torch.Tensor:
        params = list(layer.parameters())
        key = (tuple(u.shape), u.dtype, u.requires_grad, torch.is_autocast_enabled("cuda"),
               torch.get_autocast_dtype("cuda"), rate, layer.training) + storage_key(params)
        if key in self.replays:
            self.replays.use(key)
        else:
            try:
                run = graphed(_Whole(layer, rate), (u,))
            except RuntimeError as e:
                self.failed = True
                warnings.warn(f"SSM layer: cuda_graph could not capture the layer ({e}); running it eagerly",
                              stacklevel=5)
                return layer._whole(u, rate, graph=False)
            self.replays.keep = self.KEEP_VARYING if self.varying else self.KEEP
            self.replays.add(key, run)
        if self.replays.waiting(key):  # an earlier call's backward still needs this graph's activations
            return layer._whole(u, rate, graph=False)
        return self.replays.replay(key, u, *params)
