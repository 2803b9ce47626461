"""A GPU benchmark on a machine without CUDA exits with one line that says so, not with torch's AssertionError."""
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_a_gpu_benchmark_without_cuda_exits_with_one_line():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, str(BENCHMARKS / "vis4mer_speed.py")], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 1
    assert run.stderr.splitlines() == ["vis4mer_speed.py: needs a CUDA GPU (torch.cuda.is_available() is False); on "
                                       "a CPU: --device cpu --length 256"]


def test_every_benchmark_that_puts_tensors_on_cuda_checks_for_it():
    for path in sorted(BENCHMARKS.glob("*.py")):
        text = path.read_text()
        if 'device="cuda"' in text or ".cuda()" in text:
            assert "require_cuda(" in text or "torch.cuda.is_available()" in text, path.name


def test_the_host_stand_in_runs_the_gpu_path_on_a_cpu():
    """benchmarks/host_standin.py times the layers' GPU path on CPU tensors, the chunk matrices' graphs through the
    code's own machinery (it exits with a message if they fell back to the eager build)."""
    import pytest
    pytest.importorskip("triton")
    run = subprocess.run([sys.executable, str(BENCHMARKS / "host_standin.py"), "--kinds", "S4", "S4D", "--precision",
                          "fp32", "--steps", "5"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["S4 fp32", "S4D fp32"] and all(" µs" in line for line in lines)
