"""The README's Python examples run as written: every ```python block that starts with "import " is a whole program
(the others are fragments for a user's own code: a LightningModule, a trained run's directory, an ONNX export)."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
          if b.startswith("import ")]


def test_the_readme_has_whole_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", BLOCKS, ids=[b.splitlines()[-1].strip()[:40] for b in BLOCKS])
def test_readme_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything an example writes goes there
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
