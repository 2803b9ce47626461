"""Where the trainer's step goes: an experiment trained by ssmkit's own trainer (its data loader and real batches, the
step sums read back, the schedule, validation and checkpoints around the epoch), with optimizer steps
[--skip, --skip + --steps) of the first epoch under torch.profiler. Prints the wall time of those steps beside the
time the GPU was busy in them, the kernels per step, the busiest kernels, the host's busiest ops, and the time of
each evaluation (validation, test): what experiment_throughput.py (the model's step on one fixed batch in a bare loop)
does not see, the loader, the real batches, the sums read back, and the epoch's validation.

    python benchmarks/trainer_profile.py EXPERIMENT [KEY=VALUE ...] [--skip 10] [--steps 5] [--top 25]

The run trains one epoch of skip + 2·steps + 2 steps (train_subset is set to that many batches) and writes to a
temporary folder: after the profiled steps, as many again without the profiler give the step's own wall time
(timed from when the profiler has stopped: its processing of the window is no step's).
KEY=VALUE overrides go to the experiment (data_dir=..., precision=bf16, ...; not fp16, whose loss scaler skips
optimizer steps).
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.profiler import ProfilerActivity, profile, schedule

from kernel_events import device_kernels, host_launches  # benchmarks/kernel_events.py
import ssmkit.train.trainer as trainer
from ssmkit.train import load_experiment, make_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--skip", type=int, default=10, help="optimizer steps before the profiled ones")
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps profiled")
    parser.add_argument("--top", type=int, default=25, help="rows of each table")
    args = parser.parse_args()
    if args.skip < 1 or args.steps < 1:
        parser.error(f"--skip and --steps: expected at least 1 each, got {args.skip} and {args.steps}")
    base = make_config(args.overrides, load_experiment(args.experiment), source=args.experiment)
    if base.precision == "fp16":  # its loss scaler skips optimizer steps (inf gradients), which would move the windows
        parser.error("precision=fp16: the loss scaler's skipped steps would move the windows; use fp32 or bf16")
    n_steps = args.skip + 2 * args.steps + 2  # then a window without the profiler, as long, after the profiled one
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    marks: list[float] = []  # wall clock after each optimizer step
    bare_start: list[float] = []  # wall clock once the profiler has stopped: the second window's start
    profiler = profile(activities=activities, schedule=schedule(wait=args.skip - 1, warmup=1, active=args.steps))

    def synchronize():
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def after_step(optimizer, *_):
        if len(marks) + 1 in (args.skip, args.skip + args.steps, args.skip + 2 * args.steps):
            synchronize()  # at the windows' ends only: the steps inside them overlap as in training
        marks.append(time.perf_counter())
        if len(marks) <= args.skip + args.steps:
            profiler.step()
        if len(marks) == args.skip + args.steps:  # the step that ended the profiled window stopped the profiler,
            synchronize()                         # whose processing of the window is not a training step's time
            bare_start.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        config = make_config([*args.overrides, "epochs=1", f"train_subset={n_steps * base.batch_size}",
                              f"out_dir={out}", "run_name=profiled"], load_experiment(args.experiment),
                             source=args.experiment)
        evaluations: list[tuple[str, float]] = []  # (split, seconds) of each evaluate call (validation, test)
        evaluate = trainer.evaluate

        def timed_evaluate(model, dataset, *a, desc="evaluation", **kw):
            synchronize()
            start = time.perf_counter()
            result = evaluate(model, dataset, *a, desc=desc, **kw)
            synchronize()
            evaluations.append((f"{desc} of {len(dataset)}", time.perf_counter() - start))
            return result

        handle = register_optimizer_step_post_hook(after_step)
        trainer.evaluate = timed_evaluate
        try:
            with profiler:
                trainer.train(config, log=lambda *_: None)
        finally:
            handle.remove()
            trainer.evaluate = evaluate
    if len(marks) < args.skip + 2 * args.steps:
        raise SystemExit(f"trainer_profile.py: the run took {len(marks)} optimizer steps, fewer than the "
                         f"{args.skip + 2 * args.steps} the windows need")
    k, n = args.skip, args.steps
    wall = 1000 * (marks[k + n - 1] - marks[k - 1]) / n
    bare = 1000 * (marks[k + 2 * n - 1] - bare_start[0]) / n
    events = profiler.key_averages()
    kernels = device_kernels(events)
    busy = sum(e.self_device_time_total for e in kernels) / args.steps / 1e3
    print(f"{args.experiment}: {bare:.1f} ms per trainer step (wall, steps {k + n + 1}-{k + 2 * n} of the first "
          f"epoch); under the profiler {wall:.1f} ms (steps {k + 1}-{k + n}), the GPU busy {busy:.1f} ms in "
          f"{sum(e.count for e in kernels) / n:.0f} kernels per step")
    launches = host_launches(events)
    print(f"the host's launches per step: {sum(launches.values()) / n:.0f} (" +
          ", ".join(f"{name} {count / n:.0f}" for name, count in sorted(launches.items(), key=lambda kv: -kv[1])) +
          "); a step whose wall time is well above the GPU's busy time waits on them")
    print("evaluations (the epoch's seconds in the log include validation): " +
          ", ".join(f"{what}: {seconds:.2f} s" for what, seconds in evaluations))
    for e in sorted(kernels, key=lambda e: -e.self_device_time_total)[:args.top]:
        print(f"  {e.self_device_time_total / args.steps / 1e3:7.3f} ms {e.count / args.steps:6.0f}x  {e.key[:100]}")
    print("host, by own time per step:")
    host = [e for e in events if e.device_type == torch.autograd.DeviceType.CPU]
    for e in sorted(host, key=lambda e: -e.self_cpu_time_total)[:args.top]:
        print(f"  {e.self_cpu_time_total / args.steps / 1e3:7.3f} ms {e.count / args.steps:6.0f}x  {e.key[:100]}")


if __name__ == "__main__":
    main()
