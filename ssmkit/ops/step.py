"""One recurrent step of a real LTI SSM with its skip and activation — the hot path of generation.

    z' = M z + b u,    y = act(c · z' + D u)        z (B, H, S), u (B, H); M (H, S, S), b, c (H, S), D (H,)

Every SSMConv layer with one output channel steps this way on the GPU: its discretized recurrence written as a real
S × S matrix per channel on interleaved (Re, Im) state pairs (kernels/chunked.py real_form). A diagonal system
passes its diagonal instead, M (H, S) = interleaved (Re Ā_n, Im Ā_n): z' is then the complex product Ā_n x_n per
pair, S/2 complex multiplies where the dense form does S² real ones. The torch reference is the truth in tests; the
Triton version (ops/triton_step.py) does the whole step of a channel in one program.
"""
from __future__ import annotations

import torch

from .chunkconv_act import ACTIVATIONS, activate
from .dispatch import implementation, register


def diagonal_times(a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Ā x per mode on interleaved pairs: a (H, S) and z (B, H, S) real -> (B, H, S)."""
    pairs = torch.view_as_complex(a.reshape(*a.shape[:-1], -1, 2).contiguous())
    x = torch.view_as_complex(z.reshape(*z.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(pairs * x).flatten(-2)


@register("ssm_step", "torch")
def ssm_step_torch(z, u, M, b, c, D, activation: str, out=None):
    Mz = diagonal_times(M, z) if M.dim() == 2 else torch.einsum("hij,bhj->bhi", M, z)
    z2 = Mz + b * u[..., None]
    if out is not None:
        z2 = out.copy_(z2)
    return activate((c * z2).sum(-1) + D * u, activation), z2


def ssm_step(z: torch.Tensor, u: torch.Tensor, M: torch.Tensor, b: torch.Tensor, c: torch.Tensor, D: torch.Tensor,
             activation: str = "gelu", out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(act(y) (B, H), z' (B, H, S)) for state z (B, H, S) and input u (B, H), all real of one dtype; M dense
    (H, S, S) or a diagonal (H, S) (module docstring).

    out: where z' is written (z itself for an update in place), else a new tensor."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
    H, S = b.shape
    if z.dim() != 3 or z.shape[1:] != (H, S) or u.shape != z.shape[:2]:
        raise ValueError(f"z, u: expected (B, H={H}, S={S}) and (B, H), got {tuple(z.shape)} and {tuple(u.shape)}")
    if M.shape not in ((H, S, S), (H, S)) or (M.dim() == 2 and S % 2):
        raise ValueError(f"M: expected (H={H}, S={S}, S) or a diagonal of interleaved pairs (H, S) with S even, got "
                         f"{tuple(M.shape)}")
    return implementation("ssm_step", z.device)(z, u, M, b, c, D, activation, out)
