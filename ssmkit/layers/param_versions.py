"""When values derived from parameters must be formed again (a layer's chunk matrices without gradients, its
discretized step, a fused stack's packed weights): a key of the parameters' storage, dtype, device and in-place
version, and of the optimizer steps taken in this process.

The version counter alone misses updates: torch.optim's fused AdamW (what the trainer uses on a GPU) writes the
parameters without bumping it, and so does an update through ``p.data``. A cache keyed on it alone kept the chunk
matrices of the first validation pass for every later one, so GPU validation metrics were computed with stale SSM
kernels. Every torch.optim optimizer's step runs the global post-step hook registered here, which counts steps; an
update that bypasses both (``p.data`` outside an optimizer) should be followed by ``parameters_changed()``.

Reading the key walks the parameters (for a SaShiMi level's 136 tensors ~0.4 ms on a CPU), which a token loop would do
at every step. Within ``parameters_frozen()`` (generate's token loop, beside torch's parametrize.cached()) a Derived
value reads its key once, at its first use in the context, and not again until the context ends.
"""
from __future__ import annotations

import contextlib
import contextvars
import itertools
from typing import Callable

from torch.optim.optimizer import register_optimizer_step_post_hook

_steps = [0]
_frozen: contextvars.ContextVar[int | None] = contextvars.ContextVar("ssmkit_parameters_frozen", default=None)
_contexts = itertools.count(1)


def parameters_changed(*_args) -> None:
    """Invalidate every cache of values derived from parameters (each torch.optim step calls this)."""
    _steps[0] += 1


register_optimizer_step_post_hook(parameters_changed)


def values_key(tensors) -> tuple:
    """The optimizer steps so far, then each tensor's storage, in-place version, dtype and device."""
    return (_steps[0],) + tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)


@contextlib.contextmanager
def parameters_frozen():
    """Within, the parameters do not change: each Derived value checks its key at its first use only."""
    token = _frozen.set(next(_contexts))
    try:
        yield
    finally:
        _frozen.reset(token)


class Derived:
    """A value formed from parameters by ``make()``, kept while ``key()`` (a values_key of them) is unchanged; read
    once per parameters_frozen() context inside one."""

    def __init__(self):
        self.key, self.value, self.context = None, None, None

    def get(self, key: Callable[[], tuple], make: Callable[[], object]):
        context = _frozen.get()
        if context is None or context != self.context:
            current = key()
            if current != self.key:
                self.set(current, make())
            self.context = context
        return self.value

    def set(self, key: tuple, value) -> None:
        """Keep ``value`` for ``key`` (checked again at the next use)."""
        self.key, self.value, self.context = key, value, None
