"""Autoregressive sampling in the recurrent view: the prompt through the chunked (FFT) view, then one step per token.

Each new token costs one step of every layer (O(N) or O(N²) per channel, independent of the position), where a
Transformer's step grows with the number of tokens before it.
"""
from __future__ import annotations

import torch


def sample(logits: torch.Tensor, temperature: float, top_k: int | None, generator=None) -> torch.Tensor:
    """A token id per row of logits (B, V): argmax for temperature 0, else softmax(logits / T) over the top k."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=generator)[:, 0]


@torch.no_grad()
def generate(model, prompt: torch.Tensor, n_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """prompt (B, P >= 1) token ids -> (tokens (B, P + n_tokens), the logits each new token was drawn from)."""
    if prompt.dim() != 2 or prompt.shape[1] < 1 or prompt.is_floating_point():
        raise ValueError(f"prompt: expected integer token ids of shape (B, P >= 1), got {tuple(prompt.shape)} "
                         f"{prompt.dtype}")
    if temperature < 0:
        raise ValueError(f"temperature: expected >= 0, got {temperature}")
    model.eval()
    states = model.default_state(prompt.shape[0])
    if prompt.shape[1] > 1:
        _, states = model.prefill(prompt[:, :-1], states)
    x, tokens, logits_seen = prompt[:, -1], [prompt], []
    for _ in range(n_tokens):
        logits, states = model.step(x, states)
        x = sample(logits, temperature, top_k, generator)
        tokens.append(x[:, None])
        logits_seen.append(logits)
    logits = torch.stack(logits_seen, 1) if logits_seen else prompt.new_zeros(prompt.shape[0], 0, 0).float()
    return torch.cat(tokens, 1), logits
