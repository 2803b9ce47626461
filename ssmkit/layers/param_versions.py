"""When values derived from parameters must be formed again (a layer's chunk matrices without gradients, its
discretized step, a fused stack's packed weights): a key of the parameters' storage, dtype, device and in-place
version, and of the optimizer steps taken in this process.

The version counter alone misses updates: torch.optim's fused AdamW (what the trainer uses on a GPU) writes the
parameters without bumping it, and so does an update through ``p.data``. A cache keyed on it alone kept the chunk
matrices of the first validation pass for every later one, so GPU validation metrics were computed with stale SSM
kernels. Every torch.optim optimizer's step runs the global post-step hook registered here, which counts steps; an
update that bypasses both (``p.data`` outside an optimizer) should be followed by ``parameters_changed()``.
"""
from __future__ import annotations

from torch.optim.optimizer import register_optimizer_step_post_hook

_steps = [0]


def parameters_changed(*_args) -> None:
    """Invalidate every cache of values derived from parameters (each torch.optim step calls this)."""
    _steps[0] += 1


register_optimizer_step_post_hook(parameters_changed)


def values_key(tensors) -> tuple:
    """The optimizer steps so far, then each tensor's storage, in-place version, dtype and device."""
    return (_steps[0],) + tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)
