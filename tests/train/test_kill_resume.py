"""benchmarks/kill_resume.py with a few kills: SIGKILL at random moments, resume, and nothing lost."""
import pytest

from conftest import benchmark_script


@pytest.mark.slow
def test_a_run_killed_at_random_moments_resumes_to_the_uninterrupted_result(tmp_path):
    for what, passed, detail in benchmark_script("kill_resume").kill_and_resume(kills=3, seed=1, workdir=tmp_path):
        assert passed, f"{what}: {detail}"
