"""Progress bars on stderr that stay out of piped output and logs: a bar only when stderr is a terminal."""
from __future__ import annotations

import sys

from tqdm import tqdm


def progress(iterable, desc: str, total: int | None = None, enabled: bool = True, leave: bool = False) -> tqdm:
    """tqdm over ``iterable``, silent when stderr is not a terminal or when not ``enabled`` (e.g. ranks other than
    0); set_postfix works either way."""
    return tqdm(iterable, desc=desc, total=total, leave=leave, dynamic_ncols=True,
                disable=not enabled or not sys.stderr.isatty())
