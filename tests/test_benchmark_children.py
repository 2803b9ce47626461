"""The benchmarks that time another checkout (layer_ab.py, trainer_step.py, cpu_step.py --code DIR) import that
checkout's ssmkit in their child processes, also when started from this checkout's root, where `python -c` would
put this checkout's package first."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from other_code import PACKAGE_LINE, check_package, child_env  # noqa: E402


def _other_checkout(tmp_path: Path) -> Path:
    (tmp_path / "ssmkit").mkdir()
    (tmp_path / "ssmkit" / "__init__.py").write_text("")
    return tmp_path


def test_a_child_imports_the_other_checkouts_package_from_this_root(tmp_path):
    other = _other_checkout(tmp_path)
    run = subprocess.run([sys.executable, "-c", PACKAGE_LINE], env=child_env(str(other)), cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    check_package(str(other), run.stderr)


def test_a_child_that_imported_this_checkout_instead_is_refused(tmp_path):
    other = _other_checkout(tmp_path)
    env = {**child_env(str(other)), "PYTHONSAFEPATH": ""}  # what layer_ab.py and trainer_step.py did
    run = subprocess.run([sys.executable, "-c", PACKAGE_LINE], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    with pytest.raises(SystemExit, match="imported ssmkit from .*, not"):
        check_package(str(other), run.stderr)
