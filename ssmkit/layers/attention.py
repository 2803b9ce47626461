"""Multi-head causal self-attention with a key/value cache — the baseline that hybrids and comparisons need.

    y = softmax(Q Kᵀ / √d + causal mask) V,   Q, K, V = u W_q, u W_k, u W_v  (per head),   out = y W_o

Same contract as the SSM layers: forward(u, state) with state the (keys, values) cache of the positions before u
(B, heads, T, d) each; step(u_t, cache) appends one position. default_state(batch, max_length) gives instead a static
cache (keys, values, position): buffers of max_length positions written in place at the position held on the device,
with the unwritten ones masked — fixed shapes, so a CUDA graph can replay the steps (models.generate uses it). The layer has no positional encoding of its own: inside
an SSM hybrid (ssmkit.models.SequenceModel with attention_every) the SSM layers give the order. causal=False makes a
bidirectional layer without recurrent use.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_batch_size, check_cache_room, check_input, check_step_input, valid_positions
from .factory import factory_kwargs
from .registry import register_layer


@register_layer("attention")
class MultiHeadAttention(nn.Module):
    """Multi-head causal self-attention with a key/value cache (n_heads; causal=False: bidirectional, no step)."""

    @factory_kwargs
    def __init__(self, d_model: int, n_heads: int = 4, *, causal: bool = True, dropout: float = 0.0,
                 l_max: int | None = None):
        super().__init__()
        if n_heads < 1 or d_model % n_heads:
            raise ValueError(f"n_heads: expected a positive divisor of d_model={d_model}, got {n_heads}")
        self.H, self.heads, self.causal, self.l_max, self.p = d_model, n_heads, causal, l_max, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _split(self, x: torch.Tensor):
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, self.H // self.heads).permute(2, 0, 3, 1, 4)
        return q, k, v  # (B, heads, L, d) each

    def default_state(self, batch_size: int, max_length: int | None = None):
        """The empty cache: growing (keys, values), or with max_length a static (keys, values, position) cache."""
        if not self.causal:
            raise ValueError("default_state: a non-causal attention layer has no recurrent view")
        check_batch_size(batch_size)
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise ValueError(f"max_length: expected None or a positive integer, got {max_length!r}")
        p = self.qkv.weight
        empty = torch.zeros(batch_size, self.heads, max_length or 0, self.H // self.heads, dtype=p.dtype,
                            device=p.device)
        if max_length is None:
            return empty, empty.clone()
        return empty, empty.clone(), torch.zeros(1, dtype=torch.long, device=p.device)

    def _check_cache(self, state, batch: int):
        if not self.causal:
            raise ValueError("state: a non-causal attention layer has no recurrent view (it reads future positions)")
        d, dtype = self.H // self.heads, self.qkv.weight.dtype
        if (not isinstance(state, tuple) or len(state) not in (2, 3)
                or any(not isinstance(t, torch.Tensor) or t.dim() != 4 or (t.shape[0], t.shape[1], t.shape[3])
                       != (batch, self.heads, d) or t.dtype != dtype for t in state[:2])):
            got = (", ".join(f"{tuple(t.shape)} {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
                             for t in state) if isinstance(state, tuple) else type(state).__name__)
            raise ValueError(f"state: expected a (keys, values) cache of shape ({batch}, {self.heads}, T, {d}) each "
                             f"in {dtype}, or the static cache of default_state(batch, max_length); got {got}")

    def _attend_cache(self, q, k, v, state):
        """Attention of L new positions over the cache and themselves -> (y, cache after them)."""
        L = q.shape[2]
        new = torch.arange(L, device=q.device)
        if len(state) == 2:  # growing: concatenate
            T = state[0].shape[2]
            k, v = torch.cat([state[0], k], 2), torch.cat([state[1], v], 2)
            allowed = torch.arange(T + L, device=q.device)[None] <= T + new[:, None]
            cache = (k, v)
        else:  # static: write in place at the position held on the device, read every slot written so far
            keys, values, position = state
            check_cache_room(position, L, keys.shape[2])
            at = position + new
            keys.index_copy_(2, at, k)
            values.index_copy_(2, at, v)
            k, v = keys, values
            allowed = torch.arange(keys.shape[2], device=q.device)[None] <= at[:, None]
            position += L
            cache = state
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                              dropout_p=self.p if self.training else 0.0), cache

    def forward(self, u: torch.Tensor, state=None, lengths=None):
        """u (B, L, H) -> (y, cache after u or None). With a cache, u continues the positions it holds. lengths (B,):
        a suffix-padded batch; a non-causal layer's queries do not read the keys beyond each length."""
        check_input(u, self.H, self.l_max, self.qkv.weight.dtype)
        real = valid_positions(lengths, u.shape[0], u.shape[1], state is not None)
        q, k, v = self._split(u)
        if state is None:
            keys = None if real is None or self.causal else real[:, None, None, :]  # causal: padding comes after
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, is_causal=self.causal,
                                               dropout_p=self.p if self.training else 0.0)
            cache = None
        else:
            self._check_cache(state, u.shape[0])
            y, cache = self._attend_cache(q, k, v, state)
        B, _, L, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(B, L, self.H)), cache

    def step(self, u: torch.Tensor, state):
        check_step_input(u, self.H, self.qkv.weight.dtype)
        y, cache = self.forward(u[:, None], state)
        return y[:, 0], cache
