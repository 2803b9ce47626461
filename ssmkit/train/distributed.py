"""torch.distributed glue for the trainer: started by torchrun (NCCL on GPUs, gloo on CPU), nothing home-made.

A process started by torchrun has WORLD_SIZE/RANK/LOCAL_RANK in its environment; ``setup`` joins the group. Outside
torchrun every helper is the identity for one process.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world_size, device). Joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, _device(device_name, 0)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(device_name, local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return dist.get_rank(), world, device


def _device(name: str, local_rank: int) -> torch.device:
    """'auto' (CUDA when torch sees a GPU, else CPU), 'cpu', 'cuda' (this process's local GPU), 'cuda:N' or 'mps';
    a device torch does not have is an error that says so."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device: expected auto, cpu, cuda, cuda:N or mps, got {name!r}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device: 'mps' asked for, but torch sees no Apple GPU; use device=cpu or device=auto")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device: {name!r} asked for, but torch sees no CUDA GPU (torch {torch.__version__}); "
                             f"use device=cpu or device=auto")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device: {name!r} asked for, but torch sees {count} GPU(s) (cuda:0..cuda:{count - 1})")
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(values: list[float], device) -> list[float]:
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast(obj, src: int = 0):
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather(obj) -> list:
    """Every rank's obj, in rank order (on every rank)."""
    if not active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if active():
        dist.barrier()


def teardown() -> None:
    if active():
        dist.destroy_process_group()
