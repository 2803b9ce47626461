"""ViS4mer (Islam, Bertasius 2022, "Long Movie Clip Classification with State-Space Video Models"): a multi-scale
temporal S4 decoder over per-token features of a video, (B, T, D) from a frozen image encoder (the paper: ViT-L
patch tokens, 197 per frame, 60 frames: T = 11,820, D = 1,024).

    h_0 = x            when d_input = d_model, else Linear(d_input -> d_model)(x)            (B, L_0 = T, H_0)
    stage i = 1..n:
        h = h + Dropout1d(S4(LayerNorm(h)))          prenorm (postnorm: h = LayerNorm(h + Dropout1d(S4(h))))
        h = AvgPool_2(h)                             L_i = ⌊L_{i−1} / 2⌋       (multiscale)
        h = GELU(Linear(H_{i−1} -> H_i)(h))          H_i = H_{i−1} / 2         (multiscale)
    logits = Linear(mean_t h)

Defaults as the official run_lvu.py: d_model 1,024, 3 stages (widths 1024 -> 512 -> 256 -> 128), S4 with N = 64,
LegS, causal, GELU, a Linear output map and dropout 0.2, l_max halved per stage, its HiPPO B̃ unclipped, its
random C taken as C̃ (no length correction), one Λ for all channels with P and B per channel, Q trained apart from
P (A = Λ − P Q*) and Re λ without a transform, as the S4 that ViS4mer ships; the dropout after each stage and
the S4 layers' own zero whole channels over time (tied, layers/dropout.py: the official Dropout2d on (B, H, L) did
so in the torch of its time). Trained with AdamW (lr 1e-3, weight decay 0.01) and a plateau schedule; evaluated by
summing the softmax over every span of a long video (span_scores).

multiscale=False is the isotropic stack: no pooling, no width change. It is then SequenceModel with the same blocks
(its submodules are named the same: encoder, layers, norms, decoder) less SequenceModel's final LayerNorm under
prenorm, and exactly SequenceModel(prenorm=False) under postnorm (tests/models/test_vis4mer.py).
"""
from __future__ import annotations


import torch
from torch import nn

from ..layers import layer as build_layer
from ..layers.dropout import dropout as make_dropout
from ..layers.registry import with_defaults
from ..layers.stack_parts import stacked_parts
from .pretrained import Pretrained

# the official S4(H, l_max, dropout) defaults; its HiPPO B̃ (s4.py nplr) is not clipped, and its random C is the C̃
# itself (length_correction=False there)
S4_DEFAULTS = {"d_state": 64, "init": "legs", "output": "linear", "B_clip": None, "tie_dropout": True,
               "length_correction": False}
# and, for layer s4, its DPLR layout: Λ is one for every channel while B and P are per channel, Q trains apart from P,
# with C (SSKernelNPLR registers w once, B = [B, P] repeated over H, C = [C, Q]), and Re λ is the raw parameter,
# without a transform (real_transform none: Re λ = −raw, the same steps under Adam). OLDER_S4_LAYOUT: what a model
# saved before 2026-12-05 was built with (ViS4mer.config_of_weights).
S4_LAYOUT = {"share_lambda": True, "tie_pq": False, "real_transform": "none"}
OLDER_S4_LAYOUT = {"share_lambda": False, "tie_pq": True, "real_transform": "exp"}


class ViS4mer(Pretrained, nn.Module):
    def __init__(self, d_input: int, d_output: int, *, d_model: int = 1024, n_layers: int = 3,
                 multiscale: bool = True, l_max: int | None = None, layer: str = "s4",
                 layer_options: dict | None = None, dropout: float = 0.2, prenorm: bool = True):
        super().__init__()
        layer_options = dict(layer_options or {})
        self.config = dict(d_input=d_input, d_output=d_output, d_model=d_model, n_layers=n_layers,
                           multiscale=multiscale, l_max=l_max, layer=layer, layer_options=dict(layer_options),
                           dropout=dropout, prenorm=prenorm)
        if not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"n_layers: expected a positive number of stages, got {n_layers!r}")
        if multiscale and d_model % 2 ** n_layers:
            raise ValueError(f"d_model: {n_layers} stages halve the width {n_layers} times, so it must be a multiple "
                             f"of {2 ** n_layers}; got {d_model}")
        if "l_max" in layer_options:
            raise ValueError("layer_options: l_max is ViS4mer's own argument (each stage's layer gets l_max / 2^i)")
        self.d_input, self.multiscale, self.prenorm = d_input, multiscale, prenorm
        self.widths = [d_model // 2 ** i if multiscale else d_model for i in range(n_layers + 1)]
        self.encoder = nn.Identity() if d_input == d_model else nn.Linear(d_input, d_model)
        defaults = {**S4_DEFAULTS, **(S4_LAYOUT if layer == "s4" else {}), "dropout": dropout}
        options = with_defaults(layer, defaults, layer_options)
        self.layers = nn.ModuleList(build_layer(layer, d_model=H, **self._length(l_max, i), **options)
                                    for i, H in enumerate(self.widths[:-1]))
        self.norms = nn.ModuleList(nn.LayerNorm(H) for H in self.widths[:-1])
        self.dropout = make_dropout(dropout, tied=True)
        self.mixers = nn.ModuleList(nn.Sequential(nn.Linear(H, H // 2), nn.GELU()) for H in self.widths[:-1]
                                    ) if multiscale else None
        self.decoder = nn.Linear(self.widths[-1], d_output)

    @classmethod
    def config_of_weights(cls, config: dict, weights: dict) -> dict:
        """Weights saved before S4 took ViS4mer's own layout (S4_LAYOUT, 2026-12-05) hold a Λ per channel and no Q,
        and their config names neither share_lambda nor tie_pq: rebuilt with the older layout (OLDER_S4_LAYOUT, under
        the options the config does name) they load as they were trained."""
        options = config.get("layer_options", {})
        if (config.get("layer", "s4") == "s4" and "layers.0.kernel.A_real" in weights
                and "layers.0.kernel.Q" not in weights and not {"share_lambda", "tie_pq"} & set(options)):
            return {**config, "layer_options": {**OLDER_S4_LAYOUT, **options}}
        return config

    def _length(self, l_max: int | None, stage: int) -> dict:
        """The l_max option of stage ``stage``: l_max / 2^stage with multiscale (the official int(l_max / 2))."""
        if l_max is None:
            return {}
        return {"l_max": l_max // 2 ** stage if self.multiscale else l_max}

    def _stage(self, i: int, h: torch.Tensor, rate: float) -> torch.Tensor:
        """Stage i on h (B, L, H_i): the residual S4 block, then (multiscale) AvgPool_2 and GELU(Linear)."""
        options = {"rate": rate} if rate != 1.0 else {}
        if self.prenorm:
            h = h + self.dropout(self.layers[i](self.norms[i](h), **options)[0])
        else:
            h = self.norms[i](h + self.dropout(self.layers[i](h, **options)[0]))
        if self.mixers is None:
            return h
        h = nn.functional.avg_pool1d(h.transpose(1, 2), 2).transpose(1, 2)
        return self.mixers[i](h)

    def forward(self, x: torch.Tensor, lengths=None, rate: float = 1.0) -> torch.Tensor:
        """x (B, T, d_input) per-token features -> logits (B, d_output). rate ≠ 1 samples every layer's kernel at
        Δ·rate (features at another frame rate)."""
        if lengths is not None:
            raise ValueError("lengths: ViS4mer reads whole spans (its pooling and mean see every position); cut long "
                             "inputs into spans (span_scores) instead of padding")
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.d_input:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected per-token features (B, T, d_input={self.d_input}), got {got}")
        stages = len(self.layers)
        if self.multiscale and x.shape[1] < 2 ** stages:
            raise ValueError(f"x: {stages} stages halve the length {stages} times, so T must be at least "
                             f"{2 ** stages}; got T={x.shape[1]}")
        h = self.encoder(x)
        with stacked_parts(self):  # like layers form their chunk matrices together in GPU training
            for i in range(stages):
                h = self._stage(i, h, rate)
        return self.decoder(h.mean(1))


@torch.no_grad()
def span_scores(model: nn.Module, x: torch.Tensor, span: int, stride: int, spans_per_batch: int = 64) -> torch.Tensor:
    """The official ViS4mer evaluation of a long input: Σ_s softmax(model(x[:, s : s + span])) over the spans that
    start at s = 0, stride, 2·stride, ..., T − span (every 60 s span of a video, 1 s apart, in run_lvu.py); an input
    shorter than one span is zero-padded to it. x (B, T, D) -> summed class probabilities (B, d_output); the argmax
    is the prediction. The spans run through the model spans_per_batch at a time."""
    for name, value in (("span", span), ("stride", stride), ("spans_per_batch", spans_per_batch)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"x: expected (B, T, D), got {tuple(x.shape) if isinstance(x, torch.Tensor) else x!r}")
    if x.shape[1] < span:
        x = nn.functional.pad(x, (0, 0, 0, span - x.shape[1]))
    windows = x.unfold(1, span, stride).transpose(2, 3)  # (B, S, span, D), spans starting every `stride`
    B, S = windows.shape[:2]
    flat = windows.reshape(B * S, span, x.shape[2])
    probs = torch.cat([model(part).softmax(-1) for part in flat.split(spans_per_batch)])
    return probs.view(B, S, -1).sum(1)
