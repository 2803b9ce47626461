"""A shipped experiment's training step on the CPU (forward, backward, AdamW) on random inputs of its shape: ms per
step, for one ssmkit checkout or for two side by side (A, B, B, A, each in its own process). With --layers, an S4
and an S4D layer's forward + backward instead (N = 64, the best of 5), at the shapes of SaShiMi's levels and of an
LRA layer.

    python benchmarks/cpu_step.py [--code DIR ...] [--steps 6] [--set KEY=VALUE ...] [NAME]
    python benchmarks/cpu_step.py --layers [--code DIR ...]

NAME: an experiment with a CPU-scale size (default sashimi-sc09-small); its dataset's shape comes from
experiment_throughput.py's table. --code: folders holding an ssmkit package (this checkout's by default; an older
commit's by `git archive REV ssmkit | tar x -C DIR`). Measured with it (2 cores, 2026-12-06): sashimi-sc09-small at
batch 8, 1,061 / 1,199 ms per step before the scalar norm's two-pass variance, 1,001 / 986 after; --layers, S4 at
(256 channels, L = 4,096, batch 4) 2,677-3,271 ms before the Cauchy sums shared their reciprocals, 494-539 after.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from other_code import child_env  # benchmarks/other_code.py

HERE = Path(__file__).resolve().parent

CHILD = """
import sys, time, torch
from types import SimpleNamespace
import ssmkit
sys.path.insert(0, {here!r})
from experiment_throughput import DATASETS, batch_for
from ssmkit.train import load_experiment, make_config
from ssmkit.train.build import build_model
from ssmkit.train.optim import adamw
from ssmkit.train.task import Task
config = make_config({overrides!r}, load_experiment({name!r}), source={name!r})
shape = DATASETS[config.dataset][0]
ds = SimpleNamespace(**{{"pair": False, **shape(config.dataset_options)}})
torch.manual_seed(0)
model = build_model(config, ds)
optimizer = adamw(model, config.lr, config.weight_decay, config.adam_betas, config.weight_decay_all)
task = Task(ds)
x, y = batch_for(ds, config.batch_size, "cpu")
def step():
    optimizer.zero_grad(set_to_none=True)
    (task.sums(model(x), y)[0] / len(y)).backward()
    optimizer.step()
step()
start = time.perf_counter()
for _ in range({steps}):
    step()
ms = (time.perf_counter() - start) / {steps} * 1e3
print(f"{{ssmkit.__file__}}: batch {{config.batch_size}}, {{ms:.0f}} ms per step")
"""

LAYERS = """
import time, torch, ssmkit
torch.manual_seed(0)
for name in ("s4", "s4d"):
    cells = []
    for H, L, B in ((16, 16000, 8), (32, 4000, 8), (64, 1000, 8), (256, 4096, 4)):
        layer = ssmkit.layer(name, d_model=H, d_state=64, l_max=L, **({{"n_ssm": 1}} if name == "s4" else {{}}))
        u = torch.randn(B, L, H)
        times = []
        for _ in range(6):
            start = time.perf_counter()
            layer(u)[0].sum().backward()
            times.append(time.perf_counter() - start)
        cells.append(f"({{H}}, {{L}}, {{B}}) {{min(times[1:]) * 1e3:.0f}} ms")
    print(f"{{ssmkit.__file__}} {{name}}: " + ", ".join(cells))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="sashimi-sc09-small")
    parser.add_argument("--code", nargs="*", default=[str(HERE.parent)])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--layers", action="store_true")
    args = parser.parse_args()
    order = args.code + args.code[::-1] if len(args.code) == 2 else args.code  # A, B, B, A: as trainer_step.py
    script = LAYERS.format() if args.layers else CHILD.format(here=str(HERE), overrides=args.set, name=args.name,
                                                               steps=args.steps)
    for code in order:
        subprocess.run([sys.executable, "-c", script], env=child_env(code), check=True)


if __name__ == "__main__":
    main()
