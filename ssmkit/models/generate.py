"""Autoregressive sampling in the recurrent view: the prompt through the chunked (FFT) view, then one step per token.

Each new token costs one step of every layer (O(N) or O(N²) per channel, independent of the position), where a
Transformer's step grows with the number of tokens before it. On CUDA the whole token step (every layer's step, the
head, the sampler) is captured once as a CUDA graph over static buffers and replayed per token: one launch per token
instead of dozens, and no host synchronization. The graph replays exactly the kernels of the plain loop, so both
give the same tokens for the same seed (tested). The random numbers are drawn before the loop (models/sampling.py).

A model whose state changes shape within a cycle of steps and back (SaShiMi: its pooling windows fill and empty every
``step_period`` = total pooling steps) is captured over one whole cycle: the graph replays ``step_period`` tokens, and
the states end each cycle in the loop's own buffers.
"""
from __future__ import annotations

import contextlib
import inspect
import time
import warnings

import torch
from torch.nn.utils import parametrize

from ..layers.checks import check_token_ids
from ..layers.cuda_graphs import collector_paused, generator_restored_on_failure, on_capture_stream
from ..layers.param_versions import parameters_frozen
from .sampling import Sampler, SamplingOptions


def _tree_map(fn, *trees):
    """fn over the leaves of nested lists/tuples: layer states are tensors, tuples of tensors and ints, or None."""
    first = trees[0]
    if isinstance(first, (list, tuple)):
        return type(first)(_tree_map(fn, *parts) for parts in zip(*trees))
    return fn(*trees)


def _clone(leaf):
    return leaf.clone() if isinstance(leaf, torch.Tensor) else leaf


def _assign(old, new):
    """new into old's buffer when it fits (what a CUDA graph replays), else new itself."""
    if old is new:
        return old
    if isinstance(old, torch.Tensor) and isinstance(new, torch.Tensor) and old.shape == new.shape and \
            old.dtype == new.dtype:
        return old.copy_(new)
    return new


def _shapes(tree):
    return _tree_map(lambda t: (tuple(t.shape), t.dtype) if isinstance(t, torch.Tensor) else t, tree)


def _tensors(tree) -> list[torch.Tensor]:
    found = []
    _tree_map(lambda t: found.append(t) if isinstance(t, torch.Tensor) else None, tree)
    return found


def _logits_map(model) -> torch.nn.Linear:
    """The model's last linear map, the one that writes the logits (its decoder, or the decoder's last layer)."""
    return [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)][-1]


def _check_token_model(model) -> None:
    """One clear line unless ``model`` samples token ids step by step: it has the recurrent interface (default_state,
    prefill, step) and a decoder, runs per step (not a classifier), and reads token ids (an embedding, not d_input
    continuous features). Checked before the prompt's ids, which a classifier's classes would misname."""
    missing = [name for name in ("default_state", "prefill", "step", "decoder") if not hasattr(model, name)]
    if missing:
        raise ValueError(f"model: generate samples from a per-step model over token ids (a SequenceModel with "
                         f"vocab_size and pool='none', or a Sashimi); this {type(model).__name__} has no "
                         f"{', '.join(missing)}")
    if hasattr(model, "check_per_step"):
        model.check_per_step()
    if getattr(model, "config", {}).get("vocab_size", 0) is None:
        raise ValueError(f"model: generate samples token ids; this {type(model).__name__} reads continuous inputs "
                         f"(d_input={model.config.get('d_input')}, vocab_size=None)")


class _Loop:
    """The token loop over device buffers: x (B,) the last token, states, and the outputs written at position t."""

    def __init__(self, model, x, states, sampler: Sampler, uniforms: torch.Tensor, vocab: int):
        n, B = uniforms.shape
        self.model, self.sampler, self.uniforms = model, sampler, uniforms
        self.x, self.states = x.clone(), _tree_map(_clone, states)
        self.t = torch.zeros(1, dtype=torch.long, device=x.device)
        self.tokens = torch.empty(n, B, dtype=torch.long, device=x.device)
        self.logits = torch.empty(n, B, vocab, dtype=_logits_map(model).weight.dtype, device=x.device)
        # a model whose step ends in a LayerNorm and a Linear (step_features, feature_head) is drawn from through
        # them in one op, where the sampler has no filters
        self.head = model.feature_head() if hasattr(model, "step_features") and not sampler.filtered else None

    def step(self, offset: int = 0, advance: bool = True) -> None:
        """The token at position t + offset; advance: t += 1 after it."""
        out, states = (self.model.step if self.head is None else self.model.step_features)(self.x, self.states)
        self.states = _tree_map(_assign, self.states, states)
        if self.head is None:  # out: the logits
            self.sampler.draw(out, self.uniforms, self.t, self.x, self.tokens, self.logits, offset)
        else:  # out: the features before the head
            self.sampler.draw_head(out, *self.head, self.uniforms, self.t, self.x, self.tokens, self.logits, offset)
        if advance:
            self.t += 1

    def cycle(self, period: int) -> None:
        """``period`` steps, after which the states are back in the loop's buffers (their shapes may change within);
        the steps write at t, t + 1, … (offsets, fixed in a graph) and t advances once, by period, at the end: one
        kernel a cycle rather than one a token."""
        buffers = self.states
        for k in range(period):
            self.step(offset=k, advance=False)
        self.states = _tree_map(_assign, buffers, self.states)
        self.t += period

    def snapshot(self) -> tuple:
        return self.states, [t.clone() for t in _tensors([self.x, self.states, self.t] + self.sampler.buffers())]

    def restore(self, saved: tuple) -> None:
        self.states = saved[0]
        for t, s in zip(_tensors([self.x, self.states, self.t] + self.sampler.buffers()), saved[1]):
            t.copy_(s)


@contextlib.contextmanager
def _states_in_place(model):
    """Layers that can (SSMConv.step_in_place) update the loop's own state buffers in place while it runs."""
    layers = [m for m in model.modules() if hasattr(m, "step_in_place")]
    before = [m.step_in_place for m in layers]
    for m in layers:
        m.step_in_place = True
    try:
        yield
    finally:
        for m, b in zip(layers, before):
            m.step_in_place = b


def _form_parametrized(model) -> None:
    """Inside parametrize.cached(): each parametrized weight (SaShiMi's weight-normalized pooling, W = g·V/‖V‖) formed
    once for the token loop, not at every step (its kernels, replayed by the graph too). Formed here, on the current
    stream where the graph's replays run, not first on the capture's side stream: freed at the context's end, the
    cached tensors' memory then goes back to the stream whose queued replays read it."""
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for name in module.parametrizations:
                getattr(module, name)


def _capture(loop: _Loop, period: int) -> torch.cuda.CUDAGraph | None:
    """One cycle of ``period`` token steps captured as a CUDA graph (buffers restored after warm-up); None, with a
    warning, where the cycle cannot be replayed by a graph."""
    saved = loop.snapshot()
    before = _shapes(loop.states)
    with on_capture_stream():  # warm-up outside the graph, on the stream it is captured on
        for _ in range(2):
            loop.cycle(period)
    if _shapes(loop.states) != before:
        loop.restore(saved)
        warnings.warn(f"generate: a layer's state changes shape over {period} step(s) (a growing cache), which a "
                      "CUDA graph cannot replay; stepping without a graph", stacklevel=3)
        return None
    graph = torch.cuda.CUDAGraph()
    try:
        with collector_paused(), generator_restored_on_failure(), torch.cuda.graph(graph):
            loop.cycle(period)
    except RuntimeError as e:
        warnings.warn(f"generate: the token step could not be captured as a CUDA graph ({e}); stepping without "
                      "a graph", stacklevel=3)
        graph = None
    loop.restore(saved)
    return graph


def _clock(device: torch.device) -> float:
    """time.perf_counter() once the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _run(loop: _Loop, n_tokens: int, graph: torch.cuda.CUDAGraph | None, period: int, eos: int | None) -> int:
    """Steps (or graph cycles of ``period`` steps) in blocks of about 64 tokens; with eos, stops after the block in
    which every row has finished. -> steps run (a multiple of period with a graph, so it may pass n_tokens)."""
    advance, size = (graph.replay, period) if graph is not None else (loop.step, 1)
    done = 0
    while done < n_tokens:
        for _ in range(max(1, 64 // size)):
            if done >= n_tokens:
                break
            advance()
            done += size
        if eos is not None and bool(loop.sampler.finished.all()):
            break
    return done


@torch.no_grad()
def generate(model, prompt: torch.Tensor, n_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             generator: torch.Generator | None = None, *, top_p: float = 1.0, repetition_penalty: float = 1.0,
             eos: int | None = None, seed: int | None = None, cuda_graph: bool = True, timings: dict | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """prompt (B, P >= 1) token ids -> (tokens (B, P + n), the logits each new token was drawn from (B, n, V)).

    n = n_tokens, or fewer with ``eos`` when every row has emitted it (a row that emits eos emits only eos after).
    Sampling: temperature (0: greedy), top_k, top_p, repetition_penalty; the randomness comes from ``generator`` or
    ``seed``. cuda_graph: on CUDA, replay one captured graph per token, or per cycle of ``model.step_period``
    tokens (False: the plain loop, for debugging). timings: a dict that receives the seconds of the set-up
    (``"setup"``: states, the prompt, Triton compilation and the graph's capture) and of the token steps
    (``"steps"``), the device synchronized at each mark (so only where asked for).
    """
    if not isinstance(prompt, torch.Tensor) or prompt.dim() != 2 or prompt.shape[1] < 1 or prompt.is_floating_point():
        got = f"{tuple(prompt.shape)} {prompt.dtype}" if isinstance(prompt, torch.Tensor) else type(prompt).__name__
        raise ValueError(f"prompt: expected a tensor of integer token ids of shape (B, P >= 1) (one prompt: "
                         f"torch.tensor([ids])), got {got}")
    if not isinstance(n_tokens, int) or n_tokens < 0:
        raise ValueError(f"n_tokens: expected an integer >= 0, got {n_tokens!r}")
    _check_token_model(model)
    vocab = _logits_map(model).out_features
    check_token_ids(prompt, vocab, "prompt")
    options = SamplingOptions(temperature, top_k, top_p, repetition_penalty, eos)
    options.check()
    if generator is None and seed is not None:
        generator = torch.Generator(device=prompt.device).manual_seed(seed)
    was_training = model.training  # restored on return: generating mid-training leaves the mode as it was
    model.eval()
    start = _clock(prompt.device) if timings is not None else 0.0
    try:
        B = prompt.shape[0]
        period = getattr(model, "step_period", 1)
        # a graph pays off over a few tokens; its warm-up takes two cycles, which the buffers must hold, and it replays
        # whole cycles: the buffers hold a multiple of the period (the tokens past n_tokens are dropped)
        graphed = prompt.is_cuda and cuda_graph and n_tokens >= 3
        n_buffer = max(-(-n_tokens // period) * period, 2 * period) if graphed else n_tokens
        uniforms = torch.rand(n_tokens, B, generator=generator, device=prompt.device)
        uniforms = torch.cat([uniforms, uniforms.new_zeros(n_buffer - n_tokens, B)])
        if "max_length" in inspect.signature(model.default_state).parameters:  # caches allocated whole: fixed shapes
            states = model.default_state(B, max_length=prompt.shape[1] + n_buffer)
        else:
            states = model.default_state(B)
        if prompt.shape[1] > 1:
            _, states = model.prefill(prompt[:, :-1], states)
        if n_tokens == 0:
            if timings is not None:
                timings.update(setup=_clock(prompt.device) - start, steps=0.0)
            return prompt, torch.zeros(B, 0, vocab, device=prompt.device, dtype=_logits_map(model).weight.dtype)
        sampler = Sampler(options, B, vocab, prompt.device, prompt)
        loop = _Loop(model, prompt[:, -1], states, sampler, uniforms, vocab)
        with _states_in_place(model), parametrize.cached(), parameters_frozen():
            _form_parametrized(model)
            graph = _capture(loop, period) if graphed else None
            stepping = _clock(prompt.device) if timings is not None else 0.0
            n = min(_run(loop, n_tokens, graph, period, eos), n_tokens)
            if timings is not None:
                timings.update(setup=stepping - start, steps=_clock(prompt.device) - stepping)
        tokens, logits = loop.tokens[:n].T, loop.logits[:n].transpose(0, 1)
        if eos is not None and bool((tokens == eos).any(1).all()):  # cut after the step where the last row finished
            n = int((tokens == eos).int().argmax(1).max()) + 1
            tokens, logits = tokens[:, :n], logits[:, :n]
        return torch.cat([prompt, tokens], 1), logits
    finally:
        model.train(was_training)
