"""benchmarks/kill_resume.py with a few kills: SIGKILL at random moments, resume, and nothing lost."""
import importlib.util
from pathlib import Path

import pytest


@pytest.mark.slow
def test_a_run_killed_at_random_moments_resumes_to_the_uninterrupted_result(tmp_path):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "kill_resume.py"
    spec = importlib.util.spec_from_file_location("kill_resume", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for what, passed, detail in script.kill_and_resume(kills=3, seed=1, workdir=tmp_path):
        assert passed, f"{what}: {detail}"
