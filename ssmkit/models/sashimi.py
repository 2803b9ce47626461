"""SaShiMi (Goel, Gu, Donahue, Ré 2022, "It's Raw! Audio Generation with State-Space Models"): a multi-scale stack of
S4 blocks for autoregressive raw audio.

    h_0 = Embedding(x)  or  Linear(x)                                        (B, L, H)
    down, level i = 1..K:   h_i = DownPool_i(h_{i−1})      (fold p_i steps: L_i = L_{i−1}/p_i, H_i = expand·H_{i−1})
    center:                 c = Blocks_c(h_K) + h_K
    up, level i = K..1:     u = UpPool_i(c) + h_{i−1}      (causal: shifted by one coarse step)
                            c = Blocks_i(u) + u
    logits = Linear(LayerNorm(c))

Blocks = n_layers × [Residual(layer), Residual(FF)], Residual(f)(h) = h + Dropout(f(Norm(h))), FF = Linear(H -> ff·H),
GELU, Linear(-> H). Norm is, as in the official training code (its sashimi.yaml: transposed, norm layer), a LayerNorm
with one learned scale and shift for all channels (``norm="scalar"``, layers/norms.py ScalarLayerNorm; ``norm="layer"``:
the per-channel LayerNorm of the official standalone copy), and the pooling Linears are weight normalized
(``pool_weight_norm``, the official pooling layers' default). The layer is S4 (any registered causal layer works).
``unet=True`` adds n_layers blocks at each level of the down path, before its pooling, and then every up module adds the
matching down output (the official standalone's U-Net variant). A bidirectional layer (layer_options bidirectional=True)
makes a non-causal backbone, e.g. for diffusion; it has no recurrent view. ``l_max`` (the input length): each level's
layers get the length they run at (l_max over the pooling so far), so S4 trains the C̃ of that length as the official
SaShiMi's layers do; without it they train the plain C.

Recurrent view: the pooling layers keep their phase in the state (ssmkit.layers.pool), so one step runs only the
levels whose window completes: the coarse level i runs at every (p_1…p_i)-th step. ``default_state``, ``prefill``
(the chunked view, any prompt length) and ``step`` give the outputs of ``forward`` one position at a time. On the GPU
a step runs each level's stack of blocks as one op (ops.block_step, models/fused_levels.py) where it can, and the
coarser levels of a step on a second stream beside each level's blocks (models/beside.py): a level's output at a step
is its first pending output, which the coarse step's new expansion does not change.
"""
from __future__ import annotations

import inspect
import itertools
import math
import re

import torch
from torch import nn

from ..layers import layer as build_layer
from ..layers.registry import LAYERS
from ..layers.dropout import dropout as make_dropout
from ..layers.norms import norm_class
from ..layers.pool import DownPool, UpPool
from ..layers.stack_parts import stacked_parts
from ..ops import block_step
from .beside import Beside
from .fused_levels import FusedStack
from .pretrained import Pretrained


class FeedForward(nn.Module):
    """Position-wise Linear(H -> ff·H), GELU, Dropout, Linear(ff·H -> H); stateless, with the layer interface."""

    def __init__(self, d_model: int, expand: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, expand * d_model), nn.GELU(),
                                 make_dropout(dropout),
                                 nn.Linear(expand * d_model, d_model))

    def forward(self, u: torch.Tensor, state=None):
        return self.net(u), None

    def step(self, u: torch.Tensor, state=None):
        return self.net(u), None

    def default_state(self, batch_size: int):
        return None


class Residual(nn.Module):
    """h + Dropout(layer(Norm(h))) (prenorm; Norm: ``norm`` of layers/norms.py), over a chunk (B, L, H) or one step
    (B, H)."""

    def __init__(self, layer: nn.Module, d_model: int, dropout: float, norm: str):
        super().__init__()
        self.layer, self.norm = layer, norm_class(norm)(d_model)
        self.dropout = make_dropout(dropout)

    def forward(self, h: torch.Tensor, state=None):
        y, state = self.layer(self.norm(h), state)
        return h + self.dropout(y), state

    def step(self, h: torch.Tensor, state):
        y, state = self.layer.step(self.norm(h), state)
        return h + self.dropout(y), state

    def default_state(self, batch_size: int):
        return self.layer.default_state(batch_size)


class Sashimi(Pretrained, nn.Module):
    head_modules = ("encoder", "decoder")  # outside the official backbone (train/optim.py decay_heads)

    def __init__(self, d_input: int, d_output: int, *, vocab_size: int | None = None, d_model: int = 64,
                 n_layers: int = 8, pool: tuple | list = (4, 4), expand: int = 2, ff: int = 2, unet: bool = False,
                 layer: str = "s4", layer_options: dict | None = None, dropout: float = 0.0,
                 l_max: int | None = None, norm: str = "scalar", pool_weight_norm: bool = True):
        super().__init__()
        self.config = dict(d_input=d_input, d_output=d_output, vocab_size=vocab_size, d_model=d_model,
                           n_layers=n_layers, pool=list(pool), expand=expand, ff=ff, unet=unet, layer=layer,
                           layer_options=dict(layer_options or {}), dropout=dropout, l_max=l_max, norm=norm,
                           pool_weight_norm=pool_weight_norm)
        if norm not in ("scalar", "layer"):
            raise ValueError(f"norm: expected 'scalar' (the official training code's) or 'layer', got {norm!r}")
        if not isinstance(pool_weight_norm, bool):
            raise ValueError(f"pool_weight_norm: expected true or false, got {pool_weight_norm!r}")
        pool = tuple(pool)
        if not all(isinstance(p, int) and p >= 1 for p in pool):
            raise ValueError(f"pool: expected a sequence of positive integer strides, got {pool!r}")
        if l_max is not None and (not isinstance(l_max, int) or isinstance(l_max, bool) or l_max < 1):
            raise ValueError(f"l_max: expected None or a positive integer, got {l_max!r}")
        if "l_max" in (layer_options or {}):
            raise ValueError("layer_options: l_max differs per level (the input length over the pooling so far); give "
                             "it to Sashimi as l_max, not to its layers")
        for key, value in (("n_layers", n_layers), ("expand", expand)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}: expected a positive integer, got {value!r}")
        if not isinstance(ff, int) or ff < 0:
            raise ValueError(f"ff: expected 0 (no FF blocks) or a positive integer, got {ff!r}")
        self.pool, self.unet, self.vocab_size = pool, unet, vocab_size
        self.encoder = nn.Embedding(vocab_size, d_model) if vocab_size else nn.Linear(d_input, d_model)

        takes_l_max = "l_max" in inspect.signature(LAYERS[layer]).parameters if layer in LAYERS else False

        def blocks(level: int) -> nn.ModuleList:
            """n_layers residual blocks at width widths[level]; with l_max, their layers train C̃ for that level's
            length (the official layers convert their C at the first forward, at the length they see)."""
            H, options = widths[level], dict(layer_options or {})
            if l_max is not None and takes_l_max:
                options["l_max"] = -(-l_max // math.prod(pool[:level]))
            out = []
            for _ in range(n_layers):
                out.append(Residual(build_layer(layer, d_model=H, **options), H, dropout, norm))
                if ff:
                    out.append(Residual(FeedForward(H, ff, dropout), H, dropout, norm))
            return nn.ModuleList(out)

        widths = [d_model * expand ** i for i in range(len(pool) + 1)]
        self.down = nn.ModuleList(nn.ModuleDict({"blocks": blocks(i) if unet else nn.ModuleList(),
                                                 "pool": DownPool(widths[i], widths[i + 1], p, pool_weight_norm)})
                                  for i, p in enumerate(pool))
        self.center = blocks(len(pool))
        self.up = nn.ModuleList(nn.ModuleDict({"pool": UpPool(widths[i + 1], widths[i], p, pool_weight_norm),
                                               "blocks": blocks(i)}) for i, p in reversed(list(enumerate(pool))))
        self.norm = nn.LayerNorm(d_model)
        self.decoder = nn.Linear(d_model, d_output)
        self._fused: dict[str, FusedStack] = {}  # per stack of blocks, its packed weights for ops.block_step
        self.fused_step = True  # step each level's blocks as one op where they can (False: block by block)

    @classmethod
    def config_of_weights(cls, config: dict, weights: dict) -> dict:
        """The norm and pooling the weights were trained with, read from their names: weights saved before the
        official training code's norm and pooling (2026-12-05) hold per-channel LayerNorms and plain pooling Linears,
        while their config names neither option, or (a run resumed, a checkpoint without config.json) comes from the
        current defaults. Rebuilt with what the weights hold, they load as they were trained."""
        held = {}
        if any(k.endswith(".norm.s") for k in weights):
            held["norm"] = "scalar"
        elif any(re.search(r"\d\.norm\.weight$", k) for k in weights):  # a block's LayerNorm, not the final one
            held["norm"] = "layer"
        if any(k.endswith("pool.linear.parametrizations.weight.original0") for k in weights):
            held["pool_weight_norm"] = True
        elif any(k.endswith("pool.linear.weight") for k in weights):
            held["pool_weight_norm"] = False
        return {**config, **held}

    @property
    def total_pool(self) -> int:
        return math.prod(self.pool)

    @property
    def step_period(self) -> int:
        """Steps after which every state has its shape again (the pooling windows fill and empty): generate's CUDA
        graph replays this many steps at once."""
        return self.total_pool

    @property
    def layers(self) -> list[nn.Module]:
        """The sequence layers of every residual block (not the FF ones), down path to up path."""
        return [m.layer for m in self._modules_in_order() if isinstance(m, Residual)
                and not isinstance(m.layer, FeedForward)]

    def _modules_in_order(self):
        """Every module with a state, in the order the levels visit them (the order of the state list)."""
        for level in self.down:
            yield from level["blocks"]
            yield level["pool"]
        yield from self.center
        for level in self.up:
            yield level["pool"]
            yield from level["blocks"]

    def _levels(self, h: torch.Tensor, states: list | None, stepping: bool) -> tuple[torch.Tensor, list | None]:
        """h (B, L, H) through the down path, center and up path (module docstring). With states, h continues them and
        each level gets the steps its pooling window lets through (0 or more); stepping: one fine step, blocks use
        their step() on the coarse steps."""
        old = iter(states) if states is not None else itertools.repeat(None)
        new = []

        taken = [None]  # the state the last run() continued

        def run(module: nn.Module, x: torch.Tensor, **kw) -> torch.Tensor:
            state = taken[0] = next(old)
            if isinstance(module, Residual) and x.shape[1] == 0:
                y = x  # this level's window has not completed: its blocks wait, states unchanged
            elif isinstance(module, Residual) and stepping:
                y, state = module.step(x[:, 0], state)
                y = y[:, None]
            else:
                y, state = module(x, state, **kw)
            new.append(state)
            return y

        def fusable(name: str, blocks: nn.ModuleList, h: torch.Tensor) -> FusedStack | None:
            """A level's blocks as one op (models/fused_levels.py), where this step of h (B, 1, H) can take it."""
            if name not in self._fused:
                self._fused[name] = FusedStack(blocks, with_ff=self.config["ff"] > 0)
            fused = self._fused[name]
            return fused if stepping and self.fused_step and h.shape[1] == 1 and fused.fuses(h[:, 0]) else None

        def fused_step(fused: FusedStack, h: torch.Tensor, add: torch.Tensor | None = None, **kw) -> torch.Tensor:
            """The fused stack's step on h (+ add), each (B, 1, H), taking its blocks' states."""
            ssm_states = [next(old) for _ in fused.blocks][::2 if fused.with_ff else 1]
            in_place = all(layer.step_in_place for layer in fused.layers())
            y, ssm_states = block_step(h[:, 0], ssm_states, fused.weights(), out=ssm_states if in_place else None,
                                       add=None if add is None else add[:, 0], **kw)
            for x in ssm_states:
                new.extend([x, None] if fused.with_ff else [x])
            return y[:, None]

        def level_blocks(name: str, blocks: nn.ModuleList, h: torch.Tensor, add: torch.Tensor | None = None
                         ) -> torch.Tensor:
            """blocks(u) + u for u = h (+ add): one fused op per step where the stack can (the sum formed inside
            it), else block by block."""
            fused = fusable(name, blocks, h)
            if fused is not None:
                return fused_step(fused, h, add, outer=True)
            u = h = h if add is None else h + add
            for block in blocks:
                h = run(block, h)
            return h + u

        traces = {}  # U-Net: per level, the inputs of its down blocks and their result, kept by the fused step

        def unet_down(level: int, blocks: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
            """A U-Net level's down blocks, each output kept for the up path (skips)."""
            fused = fusable(f"down{level}", blocks, h)
            if fused is not None:
                K = len(blocks)
                trace = traces[level] = h.new_empty(K + 1, h.shape[0], h.shape[2])
                fused_step(fused, h, trace=trace)
                skips.extend(trace[k][:, None] for k in range(1, K + 1))
                return trace[K][:, None]
            for block in blocks:
                h = run(block, h)
                skips.append(h)
            return h

        def unet_up(level: int, name: str, blocks: nn.ModuleList, y: torch.Tensor, skip: torch.Tensor
                    ) -> torch.Tensor:
            """A U-Net level's up blocks on y + skip, each adding the input of the matching down block."""
            trace = traces.get(level)
            fused = None if trace is None else fusable(name, blocks, y)
            if fused is not None:  # the down blocks' inputs, in their trace: one fused op adds them in reverse
                del skips[-len(blocks):]
                return fused_step(fused, y, skip, skips=trace[:len(blocks)])
            h = y + skip
            for block in blocks:
                h = run(block, h) + skips.pop()
            return h

        skips, besides = [h], {}  # down level d -> the side stream that level d + 1 and those below run on this step
        try:
            for d, level in enumerate(self.down):
                if self.unet:
                    h = unet_down(d, level["blocks"], h)
                h = run(level["pool"], h)
                skips.append(h)
                if stepping and h.shape[1]:  # a coarse step: it and the levels below beside this level's blocks
                    besides[d] = Beside.fork(h)  # None on a CPU
            h = level_blocks("center", self.center, skips.pop())
            for i, level in enumerate(self.up):
                d = len(self.up) - 1 - i  # the down level at this width
                skip = skips.pop()
                y = run(level["pool"], h, length=skip.shape[1])
                if stepping:
                    # this step's output is the first pending one, which the new coarse step's expansion (queued after
                    # it) does not change: read it from the pending outputs the step began with
                    beside = besides.get(d)  # this level's coarser levels: the blocks go beside
                    if beside is not None:
                        beside.leave()
                    y = taken[0][:, :skip.shape[1]]
                if self.unet:
                    h = unet_up(d, f"up{i}", level["blocks"], y, skip)
                else:
                    h = level_blocks(f"up{i}", level["blocks"], y, skip)
        finally:  # the main stream current again and after every side stream's work, also on an error
            for beside in reversed(besides.values()):
                if beside is not None:
                    beside.join()
        return h, (new if states is not None else None)

    def _embed(self, x: torch.Tensor, dims: int) -> torch.Tensor:
        """Token ids (B, L) / (B,) or features (B, L, d) / (B, d) -> (B, L, H) / (B, H)."""
        tokens = self.vocab_size is not None
        if tokens == x.is_floating_point() or x.dim() != dims + (0 if tokens else 1):
            shape = ("(B, L)" if dims == 2 else "(B,)") if tokens else ("(B, L, d)" if dims == 2 else "(B, d)")
            kind = "integer token ids" if tokens else "floating-point features"
            raise ValueError(f"x: expected {kind} of shape {shape}, got {tuple(x.shape)} {x.dtype}")
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L) token ids or (B, L, d_input) -> outputs (B, L, d_output); L a multiple of the total pooling."""
        h = self._embed(x, 2)
        if h.shape[1] % self.total_pool:
            raise ValueError(f"x: length L={h.shape[1]} is not a multiple of the total pooling {self.total_pool} "
                             f"(pool={list(self.pool)}); pad or crop it")
        with stacked_parts(self):  # like layers form their chunk matrices together in GPU training
            h, _ = self._levels(h, None, stepping=False)
        return self.decoder(self.norm(h))

    # -- recurrent use ------------------------------------------------------------------------------------------------
    def default_state(self, batch_size: int) -> list:
        """The state before the first step: every block's zero state, empty pooling windows, zero pending outputs."""
        return [m.default_state(batch_size) for m in self._modules_in_order()]

    def _check_states(self, states) -> None:
        n = sum(1 for _ in self._modules_in_order())
        if not isinstance(states, list) or len(states) != n:
            raise ValueError(f"states: expected the list of {n} module states from default_state, got "
                             f"{type(states).__name__}{f' of {len(states)}' if isinstance(states, list) else ''}")

    def prefill(self, x: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
        """Outputs (B, L, d_output) of a chunk x (any length) continuing ``states``, and the states after it."""
        self._check_states(states)
        h, states = self._levels(self._embed(x, 2), states, stepping=False)
        return self.decoder(self.norm(h)), states

    def step(self, x_t: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
        """One position: x_t (B,) token ids or (B, d_input) -> output (B, d_output), next states."""
        h, states = self.step_features(x_t, states)
        return self.decoder(self.norm(h)), states

    def step_features(self, x_t: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
        """step() up to its head: the top level's output (B, d_model) and the next states; step = feature_head() of
        it (generate draws through the head in one op, ops.draw_head)."""
        self._check_states(states)
        h, states = self._levels(self._embed(x_t, 1)[:, None], states, stepping=True)
        return h[:, 0], states

    def feature_head(self) -> tuple[nn.LayerNorm, nn.Linear]:
        """The final LayerNorm and Linear that make outputs of step_features."""
        return self.norm, self.decoder
