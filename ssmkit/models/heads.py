"""The ends of a SequenceModel: the encoder that embeds its input and the head that maps pooled features to outputs.

Encoders (``encoder_init``):
    torch   nn.Embedding for token ids (N(0, 1)), nn.Linear(d_input, H) for values (U(±1/√d_input))
    mega    as the official Mega LRA encoder (facebookresearch/mega, fairseq/models/lra/mega_lra_encoder.py and
            modules/real_number_embedding.py): token embeddings N(0, 1/H), values x·w + b with w ~ N(0, 1),
            b ~ N(0, 0.1²); the padding token still embeds to 0
    lecun   as the official S5's encoder, a flax Dense (lindermanlab/S5 s5/seq_model.py): weights LeCun normal over the
            fan-in (JAX's truncated normal of variance 1/fan_in; for tokens the one-hot width, the vocabulary), zero
            bias. For tokens the Dense reads one-hot vectors, so it is an embedding plus one bias added to every
            token, E[t] + b (TokenDense); the padding token's row stays 0 (it embeds to b alone, and the layers do
            not read padded positions), where the official one-hot gives it a row of its own, as it has here with
            SequenceModel's mask_padding=False (no padding_idx: an ordinary trained row)
Heads (``head``):
    linear  Linear(H → d_output); a two-tower (pair) model compares its sequences' features a, b as
            MLP([a, b, a ⊙ b, a − b]) = Linear(H → d_output)(GELU(Linear(4H → H)))   (the S4 LRA Retrieval head)
    mlp     Linear(2H → d_output, no bias)(GELU(Dropout(Linear(F → 2H))))   with F = H, or 2H for a pair [a, b]:
            the official Mega LRA classifier (fairseq/models/lra/model.py), Xavier-uniform weights, zero bias
    s5      Linear(H → d_output); a pair as the official S5 RetrievalDecoder (lindermanlab/S5 s5/seq_model.py):
            MLP([a, b, a − b, a ⊙ b]) with flax's GELU, the tanh approximation (with head_init lecun its Dense init)
Head inits (``head_init``): torch (each head's own, above) or lecun: every Linear of the head LeCun normal over its
fan-in with zero bias, the flax Dense of the official S5 decoders (lindermanlab/S5 s5/seq_model.py: the
classifier's decoder and the retrieval MLP).
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers.dropout import dropout as make_dropout
from ..layers.s5 import flax_dense_

ENCODER_INITS = ("torch", "mega", "lecun")
HEADS = ("linear", "mlp", "s5")
HEAD_INITS = ("torch", "lecun")


class TokenDense(nn.Embedding):
    """A Dense layer over one-hot tokens: E[t] + b, the embedding of token t plus one bias shared by every token."""

    def __init__(self, vocab_size: int, d_model: int, padding_idx: int | None = None):
        super().__init__(vocab_size, d_model, padding_idx=padding_idx)
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.bias

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # weights saved before the bias existed (before 2026-12-05) embedded with none: a zero bias, the same model
        state_dict.setdefault(prefix + "bias", torch.zeros_like(self.bias))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def encoder(d_input: int, d_model: int, vocab_size: int | None, padding_idx: int | None,
            init: str = "torch") -> nn.Module:
    """The input map of the module docstring: an Embedding when vocab_size is set, else a Linear."""
    if init not in ENCODER_INITS:
        raise ValueError(f"encoder_init: expected one of {ENCODER_INITS}, got {init!r}")
    token = TokenDense if init == "lecun" else nn.Embedding
    module = token(vocab_size, d_model, padding_idx=padding_idx) if vocab_size else nn.Linear(d_input, d_model)
    with torch.no_grad():
        if init == "mega" and vocab_size:
            nn.init.normal_(module.weight, std=d_model ** -0.5)
        elif init == "mega":
            nn.init.normal_(module.weight, std=1.0)
            nn.init.normal_(module.bias, std=0.1)
        elif init == "lecun":
            flax_dense_(module, fan_in=vocab_size or d_input)
        if init != "torch" and vocab_size and padding_idx is not None:
            module.weight[padding_idx].zero_()
    return module


def classifier(head: str, d_model: int, d_output: int, pair: bool, dropout: float, init: str = "torch"
               ) -> nn.Module:
    """The head of the module docstring, over pooled features (or over each position of a per-step model)."""
    if head not in HEADS:
        raise ValueError(f"head: expected one of {HEADS}, got {head!r}")
    if init not in HEAD_INITS:
        raise ValueError(f"head_init: expected one of {HEAD_INITS}, got {init!r}")
    if head in ("linear", "s5"):
        gelu = nn.GELU(approximate="tanh" if head == "s5" else "none")
        module = (nn.Sequential(nn.Linear(4 * d_model, d_model), gelu, nn.Linear(d_model, d_output))
                  if pair else nn.Linear(d_model, d_output))
    else:
        module = nn.Sequential(nn.Linear((2 if pair else 1) * d_model, 2 * d_model), make_dropout(dropout),
                               nn.GELU(), nn.Linear(2 * d_model, d_output, bias=False))
        nn.init.xavier_uniform_(module[0].weight)
        nn.init.zeros_(module[0].bias)
        nn.init.xavier_uniform_(module[3].weight)
    if init == "lecun":
        for linear in (m for m in module.modules() if isinstance(m, nn.Linear)):
            flax_dense_(linear, fan_in=linear.in_features)
    return module


def pair_features(head: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """What a two-tower head reads of the pooled features a, b (B, H): [a, b, a ⊙ b, a − b] (linear),
    [a, b, a − b, a ⊙ b] (s5) or [a, b] (mlp)."""
    features = {"linear": [a, b, a * b, a - b], "s5": [a, b, a - b, a * b], "mlp": [a, b]}[head]
    return torch.cat(features, dim=-1)
