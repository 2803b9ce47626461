"""Sequence parallelism: a 4-layer S4D model of width 256 trains on one sequence of length L at batch 1, split over
the K processes of torchrun (one GPU each over NCCL, or CPU processes over gloo). Time per step (forward, backward,
gradient sum, AdamW) and peak memory per rank; a table last.

    torchrun --standalone --nproc_per_node=K benchmarks/sequence_parallel.py --length 2097152 [--check] [--steps 5]
    torchrun --standalone --nproc_per_node=1 benchmarks/sequence_parallel.py --find-max    (one process: double L
                                                                                            until out of memory)
--check runs the same model on the whole sequence in each process as well (so L must fit one device) and prints the
largest relative difference of the outputs and of the gradients (float32). With K = 1 the layers take their usual
path (on a GPU the chunked Triton convolution); with K > 1 each rank convolves its part by FFT.
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import torch
import torch.distributed as dist

from ssmkit.models import SequenceModel
from ssmkit.models.sequence_parallel import part, sum_gradients


def build(device) -> SequenceModel:
    torch.manual_seed(0)
    return SequenceModel(1, 1, layer="s4d", d_model=256, n_layers=4, pool="none").to(device)


def peak_gib(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def train_steps(model, x, y, steps: int, device) -> float:
    """Median seconds per step over ``steps`` after one warm-up step; loss = mean squared error of the whole
    sequence, each rank's share its own positions' sum over the whole count."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = model(part(x), sequence_group=dist.group.WORLD)
        loss = (out - part(y)).square().sum() / (x.shape[1])
        loss.backward()
        sum_gradients(model)
        opt.step()
        opt.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def check(L: int, device) -> tuple[float, float, str]:
    """Max relative differences (outputs, gradients, and the parameter of the largest) between the split and the
    whole-sequence computation."""
    torch.manual_seed(1)
    x, y = torch.randn(1, L, 1, device=device), torch.randn(1, L, 1, device=device)
    model = build(device)
    whole = model(x)
    ((whole - y).square().sum() / L).backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    out = model(part(x), sequence_group=dist.group.WORLD)
    ((out - part(y)).square().sum() / L).backward()
    sum_gradients(model)
    ref = part(whole)
    out_err = ((out - ref).abs().max() / ref.abs().max()).item()
    grad_err = {n: ((p.grad - expected[n]).abs().max() / expected[n].abs().max()).item()
                for n, p in model.named_parameters()}
    worst = max(grad_err, key=grad_err.get)
    return out_err, grad_err[worst], worst


def run(L: int, steps: int, device) -> tuple[float, float]:
    torch.manual_seed(1)
    x, y = torch.randn(1, L, 1, device=device), torch.randn(1, L, 1, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = train_steps(build(device), x, y, steps, device)
    return seconds, peak_gib(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--length", type=int, default=65536)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--check", action="store_true")
    p.add_argument("--find-max", action="store_true")
    a = p.parse_args()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, K = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    if a.check:
        out_err, grad_err, worst = check(a.length, device)
        print(f"rank {rank}: check at L={a.length}: outputs {out_err:.2e}, gradients {grad_err:.2e} (relative; the "
              f"largest for {worst})", flush=True)
    L = a.length
    while True:
        try:
            seconds, peak = run(L, a.steps, device)
        except torch.OutOfMemoryError:
            print(f"rank {rank}: L={L:,} out of memory", flush=True)
            break
        rows.append((L, seconds, peak))
        print(f"rank {rank}: L={L:,} {seconds * 1e3:.0f} ms/step, peak {peak:.2f} GiB", flush=True)
        if not a.find_max:
            break
        L *= 2
    if rank == 0:
        where = torch.cuda.get_device_name(device) if cuda else "CPU"
        print(f"\n{K} process(es) on {where}, 4 x S4D width 256, batch 1\n| L | ms/step | peak GiB per rank |\n"
              "|---|---|---|")
        for L, seconds, peak in rows:
            print(f"| {L:,} | {seconds * 1e3:.0f} | {peak:.2f} |")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
