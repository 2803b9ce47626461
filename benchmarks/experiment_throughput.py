"""Training throughput of the shipped benchmark experiments at their published sizes, on random inputs of the right
shape (no data needed): parameters, ms per optimizer step, samples/s, peak memory, and the epoch time that implies.

Usage: python benchmarks/experiment_throughput.py [--precision fp32|bf16] [--profile] [--host] [--apart]
[--set KEY=VALUE] [NAME ...] (default: the LRA six, sCIFAR, Speech Commands, BIDMC, SaShiMi on SC09; `families`: the
Mega, DSS, S5 and Liquid-S4 LRA experiments). Each step takes the experiment's micro-batches (accumulate) and clipping.
--apart also measures each experiment with every layer forming its own chunk matrices (ssmkit.stacked_parts off:
layers/stack_parts.py), in the same process, in the order with, apart, apart, with (on a host-bound step the host's
speed drifts). --host prints where a step's host time goes (Python functions by their own time, under cProfile) and
how many kernels a step launches: a step whose GPU is idle waits on these. `--set model_graph=true` runs the model
through ModelGraphs (its forward and backward replayed from CUDA graphs), as the trainer's option; `--graph` measures
each experiment both ways, alternated. Needs a GPU for meaningful numbers; prints a table last.
"""
from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch

import ssmkit
from kernel_events import device_kernels, host_launches  # benchmarks/kernel_events.py
from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from ssmkit.train import ModelGraphs, load_experiment, make_config
from ssmkit.train.optim import adamw
from ssmkit.train.task import Task
from ssmkit.train.build import build_model

# per dataset: the shape build_model reads (l_max from the experiment's options where it sets one) and the size of
# the real release's training set
DATASETS = {
    "listops": (lambda o: dict(d_input=17, vocab_size=17, n_classes=10, l_max=o.get("max_length", 2000)), 96_000),
    "lra-text": (lambda o: dict(d_input=258, vocab_size=258, n_classes=2, l_max=o.get("l_max", 4096)), 22_500),
    "lra-retrieval": (lambda o: dict(d_input=258, vocab_size=258, n_classes=2, l_max=o.get("l_max", 4000), pair=True),
                      147_086),
    "scifar": (lambda o: dict(d_input=1 if o.get("grayscale") else 3, n_classes=10, l_max=1024), 45_000),
    "lra-pathfinder": (lambda o: dict(d_input=1, n_classes=2, l_max=o.get("resolution", 32) ** 2), 160_000),
    "lra-pathx": (lambda o: dict(d_input=1, n_classes=2, l_max=16384), 160_000),
    "speech-commands": (lambda o: dict(d_input=1, n_classes=o.get("classes", 35), l_max=16000), 84_843),
    "bidmc": (lambda o: dict(d_input=2, n_classes=1, l_max=4000, task="regress"), 5_550),
    "sc09": (lambda o: dict(d_input=1, n_classes=256, vocab_size=256, l_max=16000, task="lm", metric="bits"), 18_620),
}
DEFAULT = ["lra-listops", "lra-text", "lra-retrieval", "lra-image", "lra-pathfinder", "lra-pathx", "scifar",
           "speech-commands", "bidmc", "sashimi-sc09"]
FAMILIES = [f"{family}-lra-{task}" for family in ("mega", "dss", "s5", "liquid")
            for task in ("listops", "text", "retrieval", "image", "pathfinder", "pathx")] + ["s5-speech-commands"]


def batch_for(ds, batch: int, device):
    shape = (batch, 2, ds.l_max) if getattr(ds, "pair", False) else (batch, ds.l_max)
    if getattr(ds, "vocab_size", None):
        x = torch.randint(1, ds.vocab_size, shape, device=device)
    else:
        x = torch.randn(*shape, ds.d_input, device=device)
    if getattr(ds, "task", None) == "regress":
        return x, torch.randn(batch, 1, device=device)
    if getattr(ds, "task", None) == "lm":  # next-token targets at every position
        return x, torch.randint(0, ds.n_classes, shape, device=device)
    return x, torch.randint(0, ds.n_classes, (batch,), device=device)


def measure(name: str, precision: str, steps: int, device, profile: bool = False, overrides=(),
            apart: bool = False, host: bool = False, label: str = "") -> dict:
    config = make_config([f"precision={precision}", *overrides], load_experiment(name), source=name)
    shape, n_train = DATASETS[config.dataset]
    ds = SimpleNamespace(**{"pair": False, **shape(config.dataset_options)})
    torch.manual_seed(0)
    model = build_model(config, ds).to(device)
    optimizer = adamw(model, config.lr, config.weight_decay, config.adam_betas, config.weight_decay_all)
    task = Task(ds)
    x, y = batch_for(ds, config.batch_size, device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    torch.cuda.reset_peak_memory_stats(device)
    micro = config.batch_size // config.accumulate  # the experiment's micro-batches, as the trainer takes them
    forward = ModelGraphs(model) if config.model_graph else model  # --set model_graph=true: the trainer's option

    def step():
        optimizer.zero_grad(set_to_none=True)
        for xm, ym in zip(x.split(micro), y.split(micro)):
            with amp, ssmkit.stacked_parts(model, enabled=not apart):
                out = forward(xm)
            loss = task.sums(out, ym)[0] / len(y)
            loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()

    for _ in range(3):
        step()
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize(device)
    ms = 1000 * (time.perf_counter() - start) / steps
    if profile:
        print_profile(name, step)
    if host:
        print_host(name, step)
    return {"name": name + (" (apart)" if apart else "") + label, "params": sum(p.numel() for p in model.parameters()),
            "batch": config.batch_size,
            "L": ds.l_max, "ms": ms, "samples_s": config.batch_size / ms * 1000,
            "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30,
            "epoch_min": n_train / (config.batch_size / ms * 1000) / 60, "epochs": config.epochs}


def print_profile(name: str, step, steps: int = 3) -> None:
    """The step's GPU time by kernel (torch.profiler), busiest first."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    events = prof.key_averages()
    kernels = device_kernels(events)
    busy = sum(e.self_device_time_total for e in kernels) / steps / 1e3
    print(f"\n=== {name}: GPU busy {busy:.2f} ms/step in {sum(e.count for e in kernels) / steps:.0f} kernels ===")
    for e in sorted(kernels, key=lambda e: -e.self_device_time_total)[:40]:
        print(f"  {e.self_device_time_total / steps / 1e3:7.3f} ms {e.count / steps:6.0f}x  {e.key[:110]}")


def print_host(name: str, step, steps: int = 5, top: int = 45) -> None:
    """The step's host time: Python functions by their own time (cProfile), and the CUDA launches per step."""
    import cProfile
    import pstats
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        torch.cuda.synchronize()
    launches = sum(host_launches(prof.key_averages()).values())
    profiler = cProfile.Profile()
    torch.cuda.synchronize()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    host = 1000 * (time.perf_counter() - start) / steps
    torch.cuda.synchronize()
    print(f"\n=== {name}: host {host:.1f} ms/step under cProfile, {launches} launches (kernels, graphs, copies, "
          "fills) per step ===")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", default=DEFAULT,
                        help="experiments (default: the S4 benchmarks); "
                             "'families' for the Mega, DSS, S5 and Liquid-S4 ones")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="also print each step's kernels, busiest first")
    parser.add_argument("--host", action="store_true", help="also print where a step's host time goes")
    parser.add_argument("--apart", action="store_true", help="also measure each with stacked_parts off")
    parser.add_argument("--graph", action="store_true",
                        help="measure each op by op and as a whole-model graph (model_graph false / true), alternated")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every experiment, e.g. layer_options.cuda_graph=true")
    args = parser.parse_args()
    if args.apart and args.graph:
        parser.error("--apart and --graph: one comparison at a time")
    require_cuda()
    device = torch.device("cuda")
    rows = []
    names = [n for name in args.names for n in (FAMILIES if name == "families" else [name])]
    ab = (False, True, True, False)  # A B B A: the host's drift cancels
    variants = ([(apart, (), "") for apart in ab] if args.apart
                else [(False, (f"model_graph={str(g).lower()}",), " (graph)" if g else " (eager)") for g in ab]
                if args.graph else [(False, (), "")])
    for name in names:
        for apart, extra, label in variants:
            rows.append(measure(name, args.precision, args.steps, device, args.profile, [*args.set, *extra], apart,
                                args.host, label))
            print(rows[-1], flush=True)
    print(f"\n{torch.cuda.get_device_name()}, {args.precision}, {args.steps} steps after 3 warm-up steps"
          + (f", {' '.join(args.set)}" if args.set else ""))
    print("| experiment | params | batch | L | ms/step | samples/s | peak GiB | min/epoch | epochs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['params'] / 1e6:.2f} M | {r['batch']} | {r['L']} | {r['ms']:.0f} | "
              f"{r['samples_s']:.0f} | {r['peak_gib']:.1f} | {r['epoch_min']:.1f} | {r['epochs']} |")


if __name__ == "__main__":
    main()
