"""Training beside the official layer: ours vs the official S4 block plugged into our backbone, same data and trainer.

    python3 benchmarks/train_versus_official.py --official-s4 PATH/TO/s4/models/s4/s4.py [--out DIR] [--seeds 3]

The official standalone S4 module (state-spaces/s4, models/s4/s4.py; its CUDA extension is not needed) is wrapped as
a layer with our contract and registered as "official_s4"; the same SequenceModel, trainer, optimizer groups and
data then train S4 (DPLR, LegS) and S4D (S4D-Lin) both ways. The task is generated ListOps at CPU scale (5000
expressions of 50-300 tokens, padded: both layers mask the padding), bidirectional layers with n_ssm = 1 and
postnorm BatchNorm as the official LRA setup. First a check (the two S4 layers agree on copied weights), then one
run per family, implementation and seed, then the table. About 6 minutes on one H100; --tiny runs a CPU-sized smoke
test. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import ssmkit
from ssmkit.data.listops import write_listops
from ssmkit.train import make_config, train

sys.path.insert(0, str(Path(__file__).parent))
from versus_official import _load, _quiet, copy_block, copy_dplr, install_stubs, rel  # noqa: E402

FAMILIES = {  # ours, official, layer options of each
    "S4": ({"bidirectional": True, "n_ssm": 1}, {"bidirectional": True, "n_ssm": 1, "mode": "dplr", "init": "legs"}),
    "S4D": ({"bidirectional": True, "n_ssm": 1, "init": "lin"},
            {"bidirectional": True, "n_ssm": 1, "mode": "diag", "init": "diag-lin"}),
}


def register_official(module) -> None:
    """The official S4Block as a layer with our contract: forward(u, state=None, lengths=None) -> (y, None)."""

    @ssmkit.register_layer("official_s4")
    class OfficialS4(nn.Module):
        def __init__(self, d_model: int, d_state: int = 64, *, l_max: int | None = None, ssm_lr: float | None = 1e-3,
                     bidirectional: bool = False, mode: str = "dplr", init: str = "legs", n_ssm: int | None = None):
            super().__init__()
            self.block = _quiet(lambda: module.S4Block(d_model, d_state=d_state, l_max=l_max, transposed=False,
                                                       bidirectional=bidirectional, mode=mode, init=init,
                                                       n_ssm=n_ssm, lr=ssm_lr))

        def forward(self, u, state=None, lengths=None):
            return self.block(u, lengths=lengths)[0], None


def check(module, device) -> float:
    """The two S4 layers on copied weights, on the device: relative output difference (float32)."""
    torch.manual_seed(0)
    official = _quiet(lambda: module.S4Block(64, d_state=64, l_max=300, transposed=False, bidirectional=True,
                                             n_ssm=1)).to(device)
    u = torch.randn(4, 300, 64, device=device)
    y_off = official(u)[0]
    ours = ssmkit.S4(64, 64, l_max=300, bidirectional=True, n_ssm=1).to(device)
    copy_dplr(ours.kernel, official.layer.kernel)
    copy_block(ours, official)
    return rel(ours(u)[0].detach(), y_off.detach())


def run(family: str, layer: str, options: dict, data_dir: Path, out: Path, seed: int,
        tiny: bool) -> tuple[float, float]:
    """(test accuracy, seconds) of one training run."""
    overrides = [f"layer={layer}", f"data_dir={data_dir}", f"seed={seed}", f"out_dir={out}",
                 f"run_name={family}-{layer}-{seed}-{time.strftime('%H%M%S')}"]
    overrides += [f"layer_options.{k}={v}" for k, v in options.items()]
    base = dict(dataset="listops", dataset_options={"max_length": 300}, d_model=64, n_layers=4, d_state=64,
                prenorm=False, norm="batch", dropout=0.0, epochs=1 if tiny else 8, batch_size=50, lr=0.004,
                ssm_lr=0.001, weight_decay=0.05, warmup_epochs=1, train_subset=200 if tiny else 0,
                eval_subset=100 if tiny else 0)
    started = time.perf_counter()
    results = train(make_config(overrides, base), log=lambda *_: None)
    return results["test_acc"], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official-s4", type=Path, required=True, help="the official models/s4/s4.py")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ssmkit-versus-official"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="a CPU-sized smoke test")
    args = parser.parse_args()
    install_stubs()
    module = _quiet(lambda: _load("official_s4", args.official_s4))
    register_official(module)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"check: ours vs official S4 layer on copied weights ({device}, float32): {check(module, device):.1e}")
    data_dir = args.out / "listops"
    if not (data_dir / "basic_test.tsv").exists():
        n = (300, 100, 100) if args.tiny else (5000, 500, 500)
        write_listops(data_dir, *n, seed=0, min_length=50, max_length=300)
    rows = []
    for family, (ours, official) in FAMILIES.items():
        for name, layer, options in (("ssmkit", family.lower(), ours), ("official", "official_s4", official)):
            scores = [run(family, layer, options, data_dir, args.out, seed, args.tiny) for seed in range(args.seeds)]
            accuracies = [a for a, _ in scores]
            rows.append((family, name, accuracies, sum(s for _, s in scores)))
            print(f"{family} {name}: test accuracy {accuracies}", flush=True)
    print("\n| family | layer | test accuracy per seed (%) | mean ± sd (%) | seconds |\n|---|---|---|---|---|")
    for family, name, accuracies, seconds in rows:
        sd = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        print(f"| {family} | {name} | {', '.join(f'{100 * a:.1f}' for a in accuracies)} | "
              f"{100 * statistics.mean(accuracies):.1f} ± {100 * sd:.1f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
