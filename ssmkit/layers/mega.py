"""Mega: moving-average equipped gated attention (Ma, Zhou, Kong, He, Gui, Neubig, May, Zettlemoyer 2022).

    X' = SiLU(EMA(X̂) + ω ⊙ X̂)             X̂ = Norm(X) (prenorm) or X (postnorm); the damped EMA of layers.EMA
    Z = SiLU(Drop(X') W_z);  Q = κ_q ⊙ Z + μ_q;  K = κ_k ⊙ Z + μ_k;  V = SiLU(X̂ W_v)
    A = f(Q Kᵀ / s + b_rel)      f: softmax (s = √z_dim) | laplace | relu² (s = n_i, the number of keys position i sees)
    O = Drop_att(A) Drop_hid(V);  γ = SiLU(Drop(X') W_γ);  φ = σ(Drop(X') W_φ)
    Ĥ = Drop(SiLU(Drop(X') W_h + (γ ⊙ O) U_h))
    Y = φ ⊙ Ĥ + (1 − φ) ⊙ X,                              then Y ← Norm(Y) (postnorm)
    Y + Drop(FFN(Norm(Y)))  (prenorm)   or   Norm(Y + Drop(FFN(Y)))  (postnorm);   FFN = W₂ Drop_hid(SiLU(W₁ ·))

Norm is ``norm`` (layers/norms.py: layer, batch, scale, rms), one for the attention part and one for the FFN. The
dropout sites and rates are the official ones: ``dropout`` on X' and Ĥ and the FFN output, ``attention_dropout`` on A
and ``hidden_dropout`` on V and the FFN's hidden layer (facebookresearch/mega, moving_average_gated_attention.py and
normalized_feedforward_network.py; its LRA models set only ``dropout``).
laplace(x) = ½[1 + erf((x − √½)/(√(1/4π)·√2))]. b_rel is a learned bias per relative position i − j.
chunk_size = c gives Mega-chunk: attention only inside aligned chunks of c positions (linear cost), while the EMA
still spans chunk boundaries. causal=False: a bidirectional EMA and unmasked attention, no recurrent use; only then
``truncation`` = T keeps the EMA kernels' first T lags (both directions) and zeroes the rest, as the official LRA
models do (T = 1024, 4096 for Path-X): a truncated EMA is no longer a recurrence.
For laplace and relu² the scale is the number of keys each query sees (the paper divides by the sequence or chunk
length); counting visible keys keeps step-by-step use identical to the whole sequence.
Recurrent state: (EMA state, keys, values, position), a static cache — fixed shapes, written in place (under
torch.no_grad; into copies while gradients are recorded) at the position held on the device, so a CUDA graph can replay
the steps (models.generate does): position p is kept in slot p mod c of c = chunk_size slots (the open chunk; the slots
from p mod c on still hold the previous chunk's keys, masked), or without chunking in slot p of max_length (at most
l_max) slots, the unwritten ones masked.
Init as the official Mega (reset_parameters there): every linear map N(0, 0.02²) with zero bias, κ ~ N(0, 0.02²),
μ = 0, b_rel ~ N(0, 0.02²), norm gains 1; the EMA as kernels.ema.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_batch_size, check_cache_room, check_input, check_step_input, valid_positions
from .diagonal import EMA
from .dropout import dropout as make_dropout
from .factory import factory_kwargs
from .norms import apply_norm, norm_class
from .registry import register_layer

ATTENTIONS = ("softmax", "laplace", "relu2")
# columns of V per call of the fused attention on a GPU in bf16/fp16 (value_split): its memory-efficient kernels are
# built for head widths up to 128 and take a generic one above (Mega's V is 2H wide: 256 in the LRA models), which in
# bf16 is slower than two heads recomputing the weights (benchmarks/mega_speed.py, docs/benchmarks.md); in float32
# one head is faster and holds less
VALUE_WIDTH = 128


def value_split(q, k, v, mask, scale: float, width: int) -> torch.Tensor:
    """softmax(Q Kᵀ·scale + mask) V for q, k (B, Lq|Lk, z), v (B, Lk, d), mask (Lq, Lk) or (B, 1, Lq, Lk), with V's
    columns in ⌈d/width⌉ groups as heads of one F.scaled_dot_product_attention that share Q, K and the mask (each
    head recomputes the same weights). Exactly the one-head result; no dropout (a head's own mask would drop
    different weights for each group of columns)."""
    d = v.shape[-1]
    heads = -(-d // width)
    if heads == 1:
        return F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], attn_mask=mask, scale=scale)[:, 0]
    pad = heads * width - d
    v = F.pad(v, (0, pad)).unflatten(-1, (heads, width)).transpose(1, 2)  # (B, heads, Lk, width)
    o = F.scaled_dot_product_attention(q[:, None].expand(-1, heads, -1, -1), k[:, None].expand(-1, heads, -1, -1),
                                       v, attn_mask=mask, scale=scale)
    return o.transpose(1, 2).flatten(2)[..., :d]


def laplace(x: torch.Tensor) -> torch.Tensor:
    mu, sigma = math.sqrt(0.5), math.sqrt(0.25 / math.pi)
    return 0.5 * (1 + torch.erf((x - mu) / (sigma * math.sqrt(2))))


@register_layer("mega")
class Mega(nn.Module):
    """Mega layer: EMA + single-head gated attention (softmax | laplace | relu2) + normalized FFN. ndim: EMA
    expansion; z_dim, v_dim; chunk_size for Mega-chunk; causal; l_max (needed without chunk_size: it bounds the
    relative position bias); norm and prenorm; dropout, attention_dropout, hidden_dropout; truncation (non-causal)."""

    residual_block = True  # it normalizes its input and adds it back: a backbone stacks it unwrapped

    @factory_kwargs
    def __init__(self, d_model: int, ndim: int = 16, *, z_dim: int | None = None, v_dim: int | None = None,
                 attention: str = "softmax", chunk_size: int | None = None, causal: bool = True,
                 l_max: int | None = None, ffn_mult: int = 2, norm: str = "layer", prenorm: bool = True,
                 dropout: float = 0.0, attention_dropout: float = 0.0, hidden_dropout: float = 0.0,
                 truncation: int | None = None, ssm_lr: float | None = None):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention: expected one of {ATTENTIONS}, got {attention!r}")
        if chunk_size is None and l_max is None:
            raise ValueError("l_max: Mega without chunk_size needs l_max (it bounds the relative position bias)")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size: expected None or a positive integer, got {chunk_size}")
        d = d_model
        self.H, self.z, self.v = d, z_dim or max(1, d // 4), v_dim or 2 * d
        self.attention, self.chunk, self.causal, self.l_max = attention, chunk_size, causal, l_max
        self.prenorm = prenorm
        make_norm = norm_class(norm)
        self.norm = make_norm(d)
        self.ema = EMA(d, ndim, bidirectional=not causal, ssm_lr=ssm_lr, truncation=truncation)
        self.to_v = nn.Linear(d, self.v)
        self.mix = nn.Linear(d, self.z + self.v + 2 * d)  # X' -> [Z, γ, φ, X' W_h]
        self.qk_scale = nn.Parameter(0.02 * torch.randn(2, self.z))
        self.qk_shift = nn.Parameter(torch.zeros(2, self.z))
        span = chunk_size or l_max
        self.rel_bias = nn.Parameter(0.02 * torch.randn(2 * span - 1))
        self.to_h = nn.Linear(self.v, d)
        self.ffn_norm = make_norm(d)
        self.dropout = make_dropout(dropout)
        self.attention_dropout = make_dropout(attention_dropout, name="attention_dropout")
        self.hidden_dropout = make_dropout(hidden_dropout, name="hidden_dropout")
        self.ffn = nn.Sequential(OrderedDict(fc1=nn.Linear(d, ffn_mult * d), act=nn.SiLU(),
                                             drop=self.hidden_dropout,
                                             fc2=nn.Linear(ffn_mult * d, d)))
        for linear in (self.to_v, self.mix, self.to_h, self.ffn.fc1, self.ffn.fc2):
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)

    # -- attention over one block of queries and their keys --------------------------------------------------------
    def _attend(self, q, k, v, q_pos=None, k_pos=None, reads=None):
        """q (B, Lq, z), k (B, Lk, z), v (B, Lk, v); absolute positions q_pos (Lq,), k_pos (Lk,) -> (B, Lq, v), or
        both None: positions 0 .. L − 1 of both (a whole sequence, or one chunk). reads (B, Lq, Lk) bool, where
        padding was added: which keys each query may read (see _padding_reads)."""
        span = (self.rel_bias.shape[0] + 1) // 2
        toeplitz = q_pos is None and q.shape[1] <= span
        if q_pos is None:
            q_pos = k_pos = torch.arange(q.shape[1], device=q.device)
        rel = q_pos[:, None] - k_pos[None, :]
        allowed = torch.ones_like(rel, dtype=torch.bool)
        if reads is not None:
            allowed = allowed & reads
        if self.causal:
            allowed = allowed & (rel >= 0)
        if self.chunk:
            allowed = allowed & ((q_pos[:, None] // self.chunk) == (k_pos[None, :] // self.chunk))
        bias = (self._toeplitz_bias(q.shape[1], span) if toeplitz
                else self.rel_bias[(rel.clamp(-(span - 1), span - 1) + span - 1)])
        if self.attention == "softmax":
            return self._softmax_attend(q, k, v, bias.masked_fill(~allowed, float("-inf")))
        scores = q @ k.transpose(1, 2)
        n = allowed.sum(-1, keepdim=True).clamp(min=1).to(scores.dtype)
        f = laplace if self.attention == "laplace" else (lambda x: torch.relu(x) ** 2)
        return self.attention_dropout(f(scores / n + bias) * allowed) @ v

    def _toeplitz_bias(self, L: int, span: int) -> torch.Tensor:
        """(L, L): T[i, j] = rel_bias[i − j + span − 1] for L ≤ span, as windows of the 2L − 1 entries it uses,
        b[m] = rel_bias[span − L + m]: T[i, j] = b[i + (L − 1 − j)], the column-reversed unfold of b. Its gradient
        sums the diagonals (unfold's backward); indexing rel_bias by an (L, L) tensor instead scattered each entry
        back through a sort (3 of Mega's 15 ms per forward + backward at L = 4096 on an H200)."""
        return self.rel_bias[span - L:span + L - 1].unfold(0, L, 1).flip(-1)

    def _softmax_attend(self, q, k, v, mask):
        """Drop(softmax(Q Kᵀ/√z + mask)) V with mask (Lq, Lk) or, padded, (B, Lq, Lk): the relative bias, −∞ where a
        key is not read. One head of F.scaled_dot_product_attention: its fused kernels (memory-efficient attention on
        a GPU) write neither the scores nor the attention weights, where the written-out softmax kept several
        (B, Lq, Lk) tensors; the bias's gradient is still formed at (B, Lq, Lk) in backward, and a padded batch's
        mask is that size. The dropout on A is its dropout_p (attention_dropout is element-wise). On a GPU in bf16
        or fp16 without that dropout, V goes in groups of VALUE_WIDTH columns (value_split), which the fused kernels
        take faster."""
        drop = self.attention_dropout
        p = drop.p if isinstance(drop, nn.Dropout) and drop.training else 0.0
        mask = (mask[:, None] if mask.dim() == 3 else mask).to(q.dtype)
        scale = 1 / math.sqrt(self.z)
        # the dtype the kernel runs in: autocast's (q itself is float32 there: κ and μ are float32 parameters)
        runs_in = torch.get_autocast_dtype("cuda") if q.is_cuda and torch.is_autocast_enabled("cuda") else q.dtype
        if p == 0.0 and q.is_cuda and runs_in in (torch.bfloat16, torch.float16):
            return value_split(q, k, v, mask, scale, VALUE_WIDTH)
        return F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], attn_mask=mask, dropout_p=p,
                                              scale=scale)[:, 0]

    @staticmethod
    def _padding_reads(real: torch.Tensor) -> torch.Tensor:
        """(B, L, L): a real query reads only real keys; a padding query reads any (its output is discarded, and a
        chunk of padding alone must not leave a softmax with no key)."""
        return real[:, None, :] | ~real[:, :, None]

    def _attend_blocked(self, q, k, v, real=None):
        """Mega-chunk over a whole sequence in O(L·c): pad to whole chunks, attend inside each (the added keys and
        the keys beyond each length, ``real`` (B, L), are not read by real queries)."""
        B, L, _ = q.shape
        c = self.chunk
        n = -(-L // c)
        pad = n * c - L
        blocks = [F.pad(t, (0, 0, 0, pad)).reshape(B * n, c, t.shape[-1]) for t in (q, k, v)]
        real = torch.ones(B, L, dtype=torch.bool, device=q.device) if real is None else real.to(q.device)
        real = F.pad(real, (0, pad), value=False).reshape(B * n, c)
        o = self._attend(*blocks, reads=self._padding_reads(real))
        return o.reshape(B, n * c, -1)[:, :L]

    def _check_span(self, L: int) -> None:
        if self.chunk is None and L > self.l_max:
            raise ValueError(f"u: position {L} exceeds l_max={self.l_max} (the relative bias span of unchunked Mega)")

    def _slot(self, positions: torch.Tensor) -> torch.Tensor:
        """The cache slot of each absolute position: p mod chunk_size, or p without chunking."""
        return positions % self.chunk if self.chunk else positions

    def _attend_cache(self, q, k, v, state):
        """L new positions (q, k, v (B, L, ·)) over the cached keys and themselves -> (B, L, v)."""
        _, keys, values, position = state
        T, L = keys.shape[1], q.shape[1]
        new = position + torch.arange(L, device=q.device)
        cached = position - self._slot(position) + torch.arange(T, device=q.device)  # the position each slot holds
        written = torch.cat([cached < position, torch.ones_like(new, dtype=torch.bool)])
        return self._attend(q, torch.cat([keys, k.to(keys.dtype)], 1), torch.cat([values, v.to(values.dtype)], 1),
                            new, torch.cat([cached, new]), written[None, None])

    @staticmethod
    def _write(buffer: torch.Tensor, slots, new: torch.Tensor) -> torch.Tensor:
        """new at ``slots`` (of dim 1, or all of it with slots None) of buffer: in place when no gradient is recorded
        (inference: fixed buffers that a CUDA graph replays), else into a copy, so gradients flow across chunks."""
        new = new.to(buffer.dtype)
        if torch.is_grad_enabled():
            return new if slots is None else buffer.index_copy(1, slots, new)
        if slots is not None:
            return buffer.index_copy_(1, slots, new)
        return buffer if new.data_ptr() == buffer.data_ptr() else buffer.copy_(new)  # a layer that stepped in place

    def _advance(self, state, ema_state, k, v):
        """The state after L positions with keys k, values v (B, L, ·): the cache keeps the last chunk_size of them
        (all, unchunked) and the position advances by L."""
        _, keys, values, position = state
        T, L = keys.shape[1], k.shape[1]
        kept = slice(max(0, L - T), L)  # at most T consecutive positions: distinct slots
        slots = self._slot(position + torch.arange(kept.start, L, device=k.device))
        return (self._write(state[0], None, ema_state), self._write(keys, slots, k[:, kept]),
                self._write(values, slots, v[:, kept]), self._write(position, None, position + L))

    def _gated(self, u, x, x_ema, state, reads, real):
        """The gated attention and the FFN after the EMA: u, x = Norm(u) (prenorm) or u, x_ema (B, L, H) ->
        (y (B, L, H), the keys and values of these positions). reads: the real keys (non-causal, padded); real: the
        real positions for BatchNorm's statistics."""
        z, gamma, phi, hx = self.mix(self.dropout(x_ema)).split([self.z, self.v, self.H, self.H], dim=-1)
        z, gamma, phi = F.silu(z), F.silu(gamma), torch.sigmoid(phi)
        q = z * self.qk_scale[0] + self.qk_shift[0]
        k = z * self.qk_scale[1] + self.qk_shift[1]
        v = F.silu(self.to_v(x))
        read_v = self.hidden_dropout(v)
        if state is not None:
            o = self._attend_cache(q, k, read_v, state)
        elif self.chunk:
            o = self._attend_blocked(q, k, read_v, reads)
        else:
            o = self._attend(q, k, read_v, reads=None if reads is None else self._padding_reads(reads))
        h = self.dropout(F.silu(hx + self.to_h(gamma * o)))
        y = phi * h + (1 - phi) * u
        if self.prenorm:
            return y + self.dropout(self.ffn(apply_norm(self.ffn_norm, y, real))), k, v
        y = apply_norm(self.norm, y, real)
        return apply_norm(self.ffn_norm, y + self.dropout(self.ffn(y)), real), k, v

    def forward(self, u: torch.Tensor, state=None, lengths=None):
        """u (B, L, H) -> (y, next state or None); with ``state`` u continues the positions before it (under
        torch.no_grad the state is updated in place and returned). lengths (B,): a suffix-padded batch, read by neither
        the EMA nor (non-causal) the attention of the real positions, nor by BatchNorm's statistics."""
        check_input(u, self.H, None, self.to_v.weight.dtype)
        B, L, _ = u.shape
        real = valid_positions(lengths, B, L, state is not None)
        if state is None:
            self._check_span(L)
        else:
            self._check_state(state, B, L)
        x = apply_norm(self.norm, u, real) if self.prenorm else u
        x_ema, ema_state = self.ema(x, None if state is None else state[0], lengths=lengths)
        reads = None if self.causal else real  # causal: the padding comes after every real position
        y, k, v = self._gated(u, x, x_ema, state, reads, real)
        return y, None if state is None else self._advance(state, ema_state, k, v)

    def step(self, u: torch.Tensor, state):
        """u (B, H) -> (y (B, H), next state): the EMA's own step, then the gated attention over the cache. Under
        torch.no_grad the state is updated in place, with fixed shapes and no host synchronization: a CUDA graph can
        capture it."""
        check_step_input(u, self.H, self.to_v.weight.dtype)
        self._check_state(state, u.shape[0], 1)
        x = self.norm(u) if self.prenorm else u
        x_ema, ema_state = self.ema.step(x, state[0])
        y, k, v = self._gated(u[:, None], x[:, None], x_ema[:, None], state, None, None)
        return y[:, 0], self._advance(state, ema_state, k, v)

    def default_state(self, batch_size: int, max_length: int | None = None):
        """The empty static cache (module docstring): chunk_size slots with chunking (max_length changes nothing),
        else max_length slots (default l_max; at most l_max, the relative bias span)."""
        if not self.causal:
            raise ValueError("default_state: a non-causal Mega layer has no recurrent view")
        check_batch_size(batch_size)
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise ValueError(f"max_length: expected None or a positive integer, got {max_length!r}")
        if self.chunk is None and max_length is not None and max_length > self.l_max:
            raise ValueError(f"max_length: unchunked Mega steps at most l_max={self.l_max} positions (the relative "
                             f"bias span), got {max_length}")
        T = self.chunk or max_length or self.l_max
        p = self.qk_scale
        return (self.ema.default_state(batch_size), p.new_zeros(batch_size, T, self.z),
                p.new_zeros(batch_size, T, self.v), torch.zeros(1, dtype=torch.long, device=p.device))

    def _check_state(self, state, batch: int, L: int) -> None:
        if not self.causal:
            raise ValueError("state: a non-causal Mega layer has no recurrent view (it reads future positions)")
        if not isinstance(state, tuple) or len(state) != 4 or not all(isinstance(t, torch.Tensor) for t in state):
            raise ValueError("state: expected (ema_state, keys, values, position) as given by default_state")
        keys, values, position = state[1:]
        T = keys.shape[1] if keys.dim() == 3 else -1
        slots = f"T={self.chunk} (chunk_size)" if self.chunk else f"T <= l_max={self.l_max}"
        if (keys.shape != (batch, T, self.z) or values.shape != (batch, T, self.v) or position.shape != (1,)
                or position.dtype != torch.long or (T != self.chunk if self.chunk else T > self.l_max)):
            raise ValueError(f"state: expected caches (B={batch}, T, {self.z}) and (B={batch}, T, {self.v}) with "
                             f"{slots} and an integer position of shape (1,), got {tuple(keys.shape)}, "
                             f"{tuple(values.shape)} and {tuple(position.shape)} {position.dtype}")
        if self.chunk is None:
            check_cache_room(position, L, T)

