"""SSSD imputation against the simple baselines, on the test series of an imputation experiment.

    python3 benchmarks/sssd_impute.py [--experiment sssd-basicmotions-small] [--missing rm|mnr|bm|forecast]
                                      [--minutes 6] [--samples 10] [key=value ...]

Trains the experiment (stopping after the first epoch past --minutes) with dataset_options.missing set, then imputes
every test series --samples times and scores the median on the missing entries, in the dataset's units (z-scores for
the UEA sets), beside the training mean (per channel) and linear interpolation along time (per channel, constant
beyond the first and last observed steps). Prints a table last.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ssmkit import data
from ssmkit.train import load_experiment, load_model, make_config, train


def linear_interpolation(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """x, mask (n, L, K): each channel's missing steps interpolated linearly between its observed neighbours."""
    out = x.copy()
    steps = np.arange(x.shape[1])
    for i in range(x.shape[0]):
        for c in range(x.shape[2]):
            seen = mask[i, :, c] > 0
            out[i, ~seen, c] = np.interp(steps[~seen], steps[seen], x[i, seen, c]) if seen.any() else 0.0
    return out


def scores(estimate: np.ndarray, x: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    missing = mask == 0
    err = (estimate - x)[missing]
    return float(np.mean(err ** 2)), float(np.mean(np.abs(err)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="sssd-basicmotions-small")
    parser.add_argument("--missing", default="rm", choices=["rm", "mnr", "bm", "forecast"])
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--batch", type=int, default=40, help="test series imputed together")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()

    experiment = load_experiment(args.experiment)
    config = make_config([f"dataset_options.missing={args.missing}", f"max_minutes={args.minutes}",
                          f"run_name={args.experiment}-{args.missing}-{time.strftime('%Y%m%d-%H%M%S')}",
                          *args.overrides], experiment, source=args.experiment)
    started = time.perf_counter()
    results = train(config)
    trained = time.perf_counter() - started
    device = "cuda" if torch.cuda.is_available() and config.device != "cpu" else "cpu"
    model = load_model(results["run_dir"], "best", device=device)
    options = config.dataset_options
    test, fit = (data.build(config.dataset, config.data_dir, split, **options) for split in ("test", "train"))
    x, mask = test.x.numpy(), test.masks.numpy()
    generator = torch.Generator(device=device).manual_seed(config.seed)
    started = time.perf_counter()
    medians = []
    for a in range(0, len(test.x), args.batch):
        xb, mb = test.x[a:a + args.batch].to(device), test.masks[a:a + args.batch].to(device)
        medians.append(model.impute(xb, mb, args.samples, generator=generator).median.cpu())
    imputing = time.perf_counter() - started
    median = torch.cat(medians).numpy()
    assert np.array_equal(median[mask > 0], x[mask > 0]), "observed entries must come back exactly"
    mean = np.broadcast_to(fit.x.numpy().mean(axis=(0, 1)), x.shape)
    rows = [("training mean", *scores(mean, x, mask)), ("linear interpolation", *scores(linear_interpolation(x, mask),
                                                                                       x, mask)),
            (f"SSSD (median of {args.samples})", *scores(median, x, mask))]
    print(f"\n{args.experiment}, missing={args.missing} ({options.get('missing_ratio', 0.5):.0%}), {len(test)} test "
          f"series, {int((mask == 0).sum())} missing entries; trained {trained / 60:.1f} min "
          f"({sum(p.numel() for p in model.parameters()):,} parameters), imputed in {imputing:.0f} s on {device}")
    print("| method | MSE | MAE |\n|---|---|---|")
    for name, mse, mae in rows:
        print(f"| {name} | {mse:.3f} | {mae:.3f} |")


if __name__ == "__main__":
    main()
