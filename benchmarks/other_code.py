"""Running a benchmark's child process with another checkout's ssmkit (a before/after on one machine).

A child started as `python -c CODE` puts the current folder first on sys.path, before PYTHONPATH: from a checkout's
root (where the device runs its commands) it imports that checkout's ssmkit, whatever PYTHONPATH names. layer_ab.py
and trainer_step.py did, and timed one version twice (2026-12-06: two "versions" that agreed to the MiB).
PYTHONSAFEPATH (Python 3.11+) leaves the current folder out; the child then reports the package it imported
(PACKAGE_LINE) and the parent checks it against the folder it asked for.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_LINE = "import ssmkit, sys; print('ssmkit from', ssmkit.__file__, file=sys.stderr)\n"


def child_env(code: str) -> dict[str, str]:
    """The environment of a child that imports the ssmkit package in the folder ``code``."""
    return {**os.environ, "PYTHONPATH": str(Path(code).resolve()), "PYTHONSAFEPATH": "1"}


def check_package(code: str, stderr: str) -> None:
    """Raise if the child's PACKAGE_LINE names a package outside ``code``."""
    want = Path(code).resolve() / "ssmkit"
    got = [line.split("ssmkit from ", 1)[1] for line in stderr.splitlines() if line.startswith("ssmkit from ")]
    if not got or Path(got[0]).resolve().parent != want:
        raise SystemExit(f"--code {code}: the child imported ssmkit from {got[0] if got else 'nowhere'}, not {want}")
