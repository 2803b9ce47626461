"""The GPU work of a torch.profiler run: its kernels and copies, without the GPU-side spans of annotated ranges; and
the host's launches (runtime calls that queue work on the GPU), which a step that waits on its host is made of.

torch.profiler lists each record_function range that encloses GPU work (ProfilerStep#, Optimizer.step#AdamW.step,
enumerate(DataLoader)) a second time as a GPU event whose time is the span of the work under it. Summed with the
kernels it counts that time twice: trainer_profile.py's first "GPU busy" of SaShiMi's step (239.6 ms on one H200)
was its 157 ms ProfilerStep span plus 82 ms of kernels. PyTorch's own table leaves them out the same way
(profiler_util's `is_user_annotation`).
"""
from __future__ import annotations

import torch


def device_kernels(events) -> list:
    """The profiler's events (key_averages()) that are GPU kernels or copies."""
    return [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA and not e.is_user_annotation]


# the runtime calls that queue work: kernels (PyTorch's and Triton's), graph replays, copies and fills
LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaGraphLaunch",
            "cudaMemcpyAsync", "cudaMemsetAsync")


def host_launches(events) -> dict[str, int]:
    """Calls of each LAUNCHES entry among the profiler's events (key_averages(); the CPU activity recorded)."""
    return {e.key: e.count for e in events if e.key in LAUNCHES}
