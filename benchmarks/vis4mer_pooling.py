"""ViS4mer against mean pooling of the same features on the digit-video task (first and last frame show the same
digit?). Both read the same patch tokens, with the same optimizer, epochs and batch: ViS4mer as the shipped
experiment, mean pooling as a per-token MLP (Linear, GELU, Linear, GELU at width d_model), the mean over tokens, and a
Linear classifier — an order-invariant read-out, which the task defeats by construction. CPU-sized; prints a table.

    python benchmarks/vis4mer_pooling.py [--experiment vis4mer-digits-video-small] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch import nn

from ssmkit.data import build
from ssmkit.train import load_experiment, make_config, param_groups, train


class MeanPool(nn.Module):
    """logits = Linear(mean_t MLP(x_t)): what mean pooling of per-token features can do, whatever the features."""

    def __init__(self, d_input: int, d_output: int, width: int):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(d_input, width), nn.GELU(), nn.Linear(width, width), nn.GELU())
        self.decoder = nn.Linear(width, d_output)

    def forward(self, x):
        return self.decoder(self.features(x).mean(1))


def train_mean_pool(config) -> tuple[float, float]:
    """(test accuracy of the best-validation epoch, seconds), trained like the experiment's model."""
    torch.manual_seed(config.seed)
    splits = {s: build(config.dataset, None, s, **config.dataset_options).tensors for s in ("train", "val", "test")}
    (x, y), d_input = splits["train"], splits["train"][0].shape[-1]
    model = MeanPool(d_input, 2, config.d_model)
    opt = torch.optim.AdamW(param_groups(model, lr=config.lr, weight_decay=config.weight_decay))
    accuracy = lambda s: (model(splits[s][0]).argmax(-1) == splits[s][1]).float().mean().item()  # noqa: E731
    best, start = (-1.0, 0.0), time.perf_counter()
    for _ in range(config.epochs):
        model.train()
        for batch in torch.randperm(len(y)).split(config.batch_size):
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            best = max(best, (accuracy("val"), accuracy("test")))
    return best[1], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="vis4mer-digits-video-small")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides for both models, key=value")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = make_config([*args.set, f"out_dir={tmp}"], load_experiment(args.experiment), source=args.experiment)
        start = time.perf_counter()
        vis = train(config, log=lambda *_: None)["test_acc"]
        vis_time = time.perf_counter() - start
    pooled, pool_time = train_mean_pool(config)
    print(f"\n{config.dataset} {config.dataset_options}, {config.epochs} epochs, test accuracy (chance 50 %)")
    print(f"{'model':36s} {'test acc':>9s} {'seconds':>8s}")
    print(f"{'ViS4mer (' + args.experiment + ')':36s} {100 * vis:8.1f}% {vis_time:8.0f}")
    print(f"{'mean pooling of per-token MLP':36s} {100 * pooled:8.1f}% {pool_time:8.0f}")


if __name__ == "__main__":
    main()
