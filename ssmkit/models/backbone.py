"""The sequence backbone: encoder, residual blocks of any registered layer, pooling, decoder.

    h = Dropout_emb(Linear_in(x))   or   Dropout_emb(Embedding(x)) for token ids    x: (B, L, d_input) or (B, L) ints
        (encoder_init: torch's init or the official Mega LRA encoder's, heads.py)
    h = h + Dropout(layer(Norm(h)))     (prenorm)   or    h = Norm(h + Dropout(layer(h)))   (postnorm), n_layers times
        Norm: the ``norm`` option, layer | batch | scale | rms (layers/norms.py)
        (a layer that is a whole residual block, with its own norm and shortcut (GSS, Mega), is applied as it is,
        h = layer(h), as the official backbones stack them, and takes the model's norm and prenorm where it has them);
        every layer that takes a dropout gets the model's unless layer_options set one, as the official S4 backbone
        hands it down; tie_dropout=True: one mask per sample and channel shared by all positions, on the residual
        branch and in every layer that takes it (layers/dropout.py), as the official S4 model config sets (False
        leaves each layer its own default: S5's ties, as the official S5)
        each optionally followed by the same residual around an FFN: Linear(H -> ffn_mult·H), GELU, Linear(-> H);
        with attention_every = k, every k-th block is multi-head attention instead (e.g. the GSS-Transformer hybrid)
    out = head(pool(Norm_final(h)))                 pool: mean over valid steps | last valid step | none
        Norm_final: prenorm only, unless final_norm=False (S5's model has none); bn_momentum for BatchNorms
        head: Linear (linear) or Mega's LRA classifier MLP (mlp); head_init torch or lecun (S5's flax Dense), heads.py
    lengths (B,) for a suffix-padded batch: every block's layer sees its input zeroed beyond each length (as the
    official S4Block does), attention reads no padding key, BatchNorm takes its batch statistics over the real
    positions only, and token id ``padding_idx`` embeds to 0 — the outputs at real positions are those of the
    unpadded sequences. mask_padding=False reads the padding as the official DSS and S5 LRA models do: the blocks,
    their norms (BatchNorm's statistics) and the final norm see every position, the padding token is an ordinary
    trained embedding, and only the pooling uses the lengths (mean over the real positions, or the last real one).
    mask_padding='layers' is the official S4 LRA backbone's reading: every block's layer zeroes its input beyond the
    lengths (the S4Block's mask), while the residual stream, the norms (BatchNorm's statistics) and the final norm
    see every position and the padding token is an ordinary trained embedding (a layer that is a whole residual block,
    Mega or GSS, still normalizes inside over the real positions it is given). The official batches are padded to
    their longest sequence; with longest_norms=True, for batches padded further (trim_padding off, or one fixed
    length for CUDA graphs), BatchNorm's statistics take the positions before the batch's longest sequence only
    (layers/norms.py Longest), so that such a batch gives the outputs of the same batch cut to its longest.
    pair=True (two-tower): x (B, 2, L, ...) — both sequences through the same blocks and pooling to a, b, then
    out = MLP([a, b, a ⊙ b, a − b])  (Linear(4H -> H), GELU, Linear(H -> d_output)), as for LRA Retrieval, or with
    head='mlp' Mega's classifier over [a, b]

A per-step model (pool='none', causal layers) also runs recurrently: ``default_state``, ``prefill`` (the chunked view
over a prompt) and ``step`` (one position) give the outputs of ``forward`` one position at a time.

``model.config`` holds the constructor's arguments; ``save_pretrained(dir)`` writes them as config.json beside
model.safetensors, and ``SequenceModel.from_pretrained(dir)`` (or ``ssmkit.load(dir)``) rebuilds the model from that
folder alone (see pretrained.py).
"""
from __future__ import annotations

import functools
import inspect

import torch
from torch import nn

from ..layers import layer as build_layer
from ..layers.checks import check_dtype, check_token_ids, valid_positions
from ..layers.dropout import dropout as make_dropout
from ..layers.factory import factory_kwargs
from ..layers.norms import Longest, apply_norm, norm_class
from ..layers.registry import LAYERS, with_defaults
from ..layers.stack_parts import stacked_parts
from .heads import classifier, encoder, pair_features
from .pretrained import Pretrained
from .sequence_parallel import check_sequence_parallel, global_mean

POOLS = ("mean", "last", "none")
LAYER_ARGUMENTS = {"rate": "rate ≠ 1 resamples a continuous-time kernel and needs SSM layers in every block",
                   "lengths": "a padded batch needs every block's layer to mask its padding",
                   "sequence_group": "a sequence split over ranks needs a state-passing SSM layer (S4, S4D, DSS, DLR, "
                                     "EMA) in every block"}


def check_mask_padding(value) -> None:
    """mask_padding: True, False or 'layers' (module docstring), else one line naming it."""
    if not (isinstance(value, bool) or value == "layers"):
        raise ValueError(f"mask_padding: expected true, false or 'layers', got {value!r}")


def is_residual_block(cls) -> bool:
    """Whether a layer class is a whole residual block (normalizes its input and adds it back itself: GSS, Mega)."""
    return getattr(cls, "residual_block", False)


@functools.lru_cache(maxsize=None)
def _function_arguments(function) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters)


def _arguments(method) -> frozenset[str]:
    """The argument names a layer's forward or step takes: read once per function (inspect.signature costs ~25 µs,
    at every block of every forward before), or each time for a callable that is not a method."""
    function = getattr(method, "__func__", None)
    return _function_arguments(function) if function is not None else frozenset(inspect.signature(method).parameters)


class SequenceModel(Pretrained, nn.Module):
    head_modules = ("encoder", "decoder")  # outside the official S4 backbone (train/optim.py decay_heads)

    @factory_kwargs
    def __init__(self, d_input: int, d_output: int, *, layer: str = "s4d", d_model: int = 64, n_layers: int = 4,
                 layer_options: dict | None = None, prenorm: bool = True, norm: str = "layer", dropout: float = 0.0,
                 pool: str = "mean", vocab_size: int | None = None, ffn_mult: int = 0, attention_every: int = 0,
                 attention_heads: int = 4, pair: bool = False, padding_idx: int | None = None, head: str = "linear",
                 encoder_init: str = "torch", embedding_dropout: float = 0.0, tie_dropout: bool = False,
                 final_norm: bool = True, bn_momentum: float = 0.1, head_init: str = "torch",
                 mask_padding: bool | str = True, longest_norms: bool = False):
        super().__init__()
        self.config = dict(d_input=d_input, d_output=d_output, layer=layer, d_model=d_model, n_layers=n_layers,
                           layer_options=dict(layer_options or {}), prenorm=prenorm, norm=norm, dropout=dropout,
                           pool=pool, vocab_size=vocab_size, ffn_mult=ffn_mult, attention_every=attention_every,
                           attention_heads=attention_heads, pair=pair, padding_idx=padding_idx, head=head,
                           encoder_init=encoder_init, embedding_dropout=embedding_dropout, tie_dropout=tie_dropout,
                           final_norm=final_norm, bn_momentum=bn_momentum, head_init=head_init,
                           mask_padding=mask_padding, longest_norms=longest_norms)
        if pool not in POOLS:
            raise ValueError(f"pool: expected one of {POOLS}, got {pool!r}")
        make_norm = norm_class(norm, bn_momentum)
        self.prenorm, self.pool = prenorm, pool
        if padding_idx is not None and not (vocab_size and 0 <= padding_idx < vocab_size):
            raise ValueError(f"padding_idx: expected None or a token id in [0, vocab_size={vocab_size}), got "
                             f"{padding_idx}")
        check_mask_padding(mask_padding)
        if longest_norms not in (False, True) or (longest_norms and mask_padding != "layers"):
            raise ValueError(f"longest_norms: expected true only with mask_padding='layers' (got {mask_padding!r}), "
                             f"else false; got {longest_norms!r}")
        self.mask_padding, self.longest_norms = mask_padding, longest_norms
        self.encoder = encoder(d_input, d_model, vocab_size, padding_idx if mask_padding is True else None,
                               encoder_init)
        self.embedding_dropout = make_dropout(embedding_dropout, name="embedding_dropout")
        if attention_every < 0:
            raise ValueError(f"attention_every: expected 0 (none) or a positive integer, got {attention_every}")

        def block(i: int) -> nn.Module:  # a hybrid puts attention at every attention_every-th block (1-based)
            if attention_every and (i + 1) % attention_every == 0:
                return build_layer("attention", d_model=d_model, n_heads=attention_heads, dropout=dropout)
            handed = {"dropout": dropout}  # as the official backbone hands it down (and tie_dropout when set)
            if tie_dropout:
                handed["tie_dropout"] = True
            if layer in LAYERS and is_residual_block(LAYERS[layer]):
                handed.update(norm=norm, prenorm=prenorm)  # a whole block (Mega) normalizes as the model says
            return build_layer(layer, d_model=d_model, **with_defaults(layer, handed, layer_options))

        self.layers = nn.ModuleList(block(i) for i in range(n_layers))
        self.norms = nn.ModuleList(nn.Identity() if is_residual_block(type(built)) else make_norm(d_model)
                                   for built in self.layers)
        if ffn_mult < 0:
            raise ValueError(f"ffn_mult: expected 0 (no FFN) or a positive integer, got {ffn_mult}")
        self.ffns = nn.ModuleList(nn.Sequential(nn.Linear(d_model, ffn_mult * d_model), nn.GELU(),
                                                nn.Linear(ffn_mult * d_model, d_model)) for _ in range(n_layers)
                                  ) if ffn_mult else None
        self.ffn_norms = nn.ModuleList(make_norm(d_model) for _ in range(n_layers)) if ffn_mult else None
        self.dropout = make_dropout(dropout, tie_dropout)
        self.final_norm = make_norm(d_model) if prenorm and final_norm else nn.Identity()
        if pair and pool == "none":
            raise ValueError("pair: a two-tower model compares pooled sequences; pool='none' has nothing to compare")
        self.pair = pair
        self.head = head
        self.decoder = classifier(head, d_model, d_output, pair, dropout, head_init)

    def _residual(self, h: torch.Tensor, norm: nn.Module, sublayer, real=None) -> tuple[torch.Tensor, object]:
        """h + Dropout(sublayer(Norm(h))) (prenorm) or Norm(h + Dropout(sublayer(h))); sublayer returns (y, extra).
        real (B, L): the real positions of a padded batch (for BatchNorm's statistics)."""
        if self.prenorm:
            y, extra = sublayer(apply_norm(norm, h, real))
            return h + self.dropout(y), extra
        y, extra = sublayer(h)
        return apply_norm(norm, h + self.dropout(y), real), extra

    def _blocks(self, h: torch.Tensor, states: list, stepping: bool, rate: float = 1.0,
                lengths: torch.Tensor | None = None, sequence_group=None) -> tuple[torch.Tensor, list, object]:
        """The residual blocks over h (B, L, H), or over one position h (B, H) with stepping=True; rate ≠ 1 samples
        every SSM's continuous kernel at Δ·rate (a resolution change: rate 2 for input sampled half as often);
        lengths (B,) marks a suffix-padded batch (module docstring); sequence_group: h is this rank's part of
        sequences split over the group (forward). Returns h, the new states, and the positions the norms took their
        statistics over (_norm_positions), for the final norm."""
        masked = None if stepping else valid_positions(lengths, h.shape[0], h.shape[1])
        real = self._norm_positions(masked, lengths)
        options = {**({"rate": rate} if rate != 1.0 else {}), **({"lengths": lengths} if masked is not None else {}),
                   **({"sequence_group": sequence_group} if sequence_group is not None else {})}
        new_states = []
        for i, (layer, state) in enumerate(zip(self.layers, states)):
            accepted = _arguments(layer.step if stepping else layer.forward)
            for name in options:
                if name not in accepted:
                    raise ValueError(f"{name}: block {i} ({type(layer).__name__}) does not take {name}; "
                                     f"{LAYER_ARGUMENTS[name]}")
            run = functools.partial(layer.step if stepping else layer, **options)
            if is_residual_block(type(layer)):
                h, state = run(h, state)
            else:
                h, state = self._residual(h, self.norms[i], lambda x: run(x, state), real)
            if self.ffns is not None:
                h, _ = self._residual(h, self.ffn_norms[i], lambda x: (self.ffns[i](x), None), real)
            new_states.append(state)
        return h, new_states, real

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, rate: float = 1.0, *,
                sequence_group=None) -> torch.Tensor:
        """x (B, L, d_input) -> (B, d_output), or (B, L, d_output) with pool='none'. lengths (B,) masks padding.
        A pair model takes x (B, 2, L, ...) (and lengths (B, 2)). rate: see _blocks (e.g. 2 for a model trained at
        16 kHz run on 8 kHz audio). sequence_group: x is this rank's part of sequences split over the ranks of that
        process group (models/sequence_parallel.py); mean pooling then averages over the whole sequence."""
        self._check_x(x, ("B", "2", "L") if self.pair else ("B", "L"))
        with stacked_parts(self):  # like layers form their chunk matrices together in GPU training
            return self._forward(x, lengths, rate, sequence_group)

    def _forward(self, x, lengths, rate, sequence_group) -> torch.Tensor:
        if sequence_group is not None:
            check_sequence_parallel(self, lengths)
            h = self._features(x, rate, sequence_group=sequence_group)
            return self.decoder(h if self.pool == "none" else global_mean(h, sequence_group))
        if self.pair:
            B = x.shape[0]
            flat = None if lengths is None else lengths.flatten()
            a, b = self._pooled(x.flatten(0, 1), flat, rate).view(B, 2, -1).unbind(1)
            return self.decoder(pair_features(self.head, a, b))
        if self.pool == "none":
            return self.decoder(self._features(x, rate, lengths))
        return self.decoder(self._pooled(x, lengths, rate))

    def _check_x(self, x, dims: tuple, name: str = "x") -> None:
        """x: token ids of shape dims with an integer dtype (vocab_size set), else floats of shape (*dims, d_input);
        a digit in dims is that size, floats in the model's dtype (or under autocast). Token ids are checked against
        the vocabulary on a CPU only: on a GPU reading them would wait for the device at every call."""
        tokens = isinstance(self.encoder, nn.Embedding)
        d_input = None if tokens else self.encoder.in_features
        expected = dims if tokens else (*dims, f"d_input={d_input}")
        if (not isinstance(x, torch.Tensor) or x.dim() != len(expected)
                or any(d.isdigit() and x.shape[i] != int(d) for i, d in enumerate(dims))
                or (x.dtype not in (torch.int64, torch.int32) if tokens
                    else not x.is_floating_point() or x.shape[-1] != d_input)):
            got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            kind = "token ids, an int64 or int32 tensor" if tokens else "a floating-point tensor"
            shape = f"({', '.join(expected)}{',' if len(expected) == 1 else ''})"
            raise ValueError(f"{name}: expected {kind} of shape {shape}, got {got}")
        if not tokens:  # numpy's float64 arrays into a float32 model: one line, not the encoder's matmul error
            check_dtype(x, self.encoder.weight.dtype, name, "model")
        else:
            check_token_ids(x, self.encoder.num_embeddings, name)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding_dropout(self.encoder(x))

    def _features(self, x: torch.Tensor, rate: float = 1.0, lengths: torch.Tensor | None = None,
                  sequence_group=None) -> torch.Tensor:
        """(B, L, H): encoder, blocks, final norm (all over the padding too unless mask_padding is True)."""
        if self.mask_padding is False:
            lengths = None
        h, _, real = self._blocks(self._embed(x), [None] * len(self.layers), stepping=False, rate=rate,
                                  lengths=lengths, sequence_group=sequence_group)
        return apply_norm(self.final_norm, h, real)

    def _norm_positions(self, real: torch.Tensor | None, lengths: torch.Tensor | None):
        """The positions the norms take their statistics over: the real ones, or every one ('layers': as the
        official S4 backbone, whose BatchNorm reads the padding that its layers mask), or with longest_norms those
        before the batch's longest sequence."""
        if self.mask_padding != "layers":
            return real
        return Longest.of(lengths) if self.longest_norms and real is not None else None

    def _pooled(self, x: torch.Tensor, lengths: torch.Tensor | None, rate: float = 1.0) -> torch.Tensor:
        """(B, H): the features pooled over valid positions."""
        h = self._features(x, rate, lengths)
        L = h.shape[1]
        if lengths is None:
            lengths = torch.full((h.shape[0],), L, device=h.device)
        if self.pool == "last":
            return h[torch.arange(h.shape[0], device=h.device), lengths - 1]
        mask = (torch.arange(L, device=h.device)[None] < lengths[:, None]).to(h.dtype)[..., None]
        return (h * mask).sum(1) / lengths[:, None].to(h.dtype)

    # -- recurrent use (per-step models) -------------------------------------------------------------------------------
    def check_per_step(self) -> None:
        """A clear error unless the model runs per step (pool='none'): a classifier's outputs are not next tokens."""
        if self.pool != "none":
            raise ValueError(f"model: this SequenceModel is a classifier or regressor (pool={self.pool!r}: one output "
                             f"per sequence); step, prefill and generate need a per-step model (pool='none')")

    def default_state(self, batch_size: int, max_length: int | None = None) -> list:
        """Every block's zero state. max_length: the most positions the states will see; layers with a cache then
        allocate it whole (attention's static cache), which keeps the shapes fixed for CUDA graphs."""
        self.check_per_step()
        return [layer.default_state(batch_size, max_length)
                if max_length is not None and "max_length" in inspect.signature(layer.default_state).parameters
                else layer.default_state(batch_size) for layer in self.layers]

    def prefill(self, x: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
        """Outputs (B, L, d_output) of a chunk x continuing ``states``, and the states after it (chunked view)."""
        self.check_per_step()
        self._check_x(x, ("B", "L"))
        h, states, _ = self._blocks(self._embed(x), states, stepping=False)
        return self.decoder(self.final_norm(h)), states

    def step(self, x_t: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
        """One position: x_t (B,) token ids or (B, d_input) -> output (B, d_output), next states."""
        self.check_per_step()
        self._check_x(x_t, ("B",), "x_t")
        h, states, _ = self._blocks(self._embed(x_t), states, stepping=True)
        return self.decoder(self.final_norm(h)), states
