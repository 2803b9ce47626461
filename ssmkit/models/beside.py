"""Work of a recurrent step that the rest of the step does not read, run on a second CUDA stream beside it.

In a SaShiMi step the coarse levels (the pooled levels below the top one) run only when the top pooling window
completes, and what they make, the top level's next pending outputs, is first read at the next step: the top level's
blocks at this step read the pending output the step began with. So the two are independent within the step, and on
a GPU at small batch, where each is a chain of small kernels that leaves most of the device idle, they can run at
once:

    main stream:   top DownPool ─┬─────────────── top blocks ─────────── join ─ head, draw
    side stream:                 └─ coarse levels, top UpPool's refill ──┘

The same holds one level down: where the middle window also completes, the levels below the middle one fork again
from the side stream and run beside the middle level's blocks (pools (4, 4) at batch 1: the center's stack beside the
middle one's, where it ran after it), and so on for deeper pools.

``fork`` makes the side stream wait for the main one and makes it current; ``leave`` makes the main stream current
again while the side's queued kernels go on; ``join`` makes the main stream wait for them. A CUDA graph captured over
the step records the two branches as parallel nodes (the fork and join are the events of wait_stream). On a CPU
tensor ``fork`` returns None and the step runs in order, as before.

Memory: the caching allocator hands a freed block back to the stream that allocated it at once. A tensor made on the
main stream and read on the side one (the coarse input) is kept until ``join``; tensors made on the side stream and read
later on the main one (the pending outputs) are freed only after a join, after which the side stream's next work is
queued behind the main stream's (the next fork), so neither is reused while a kernel may still read it. That holds
per main stream, so each main stream gets its own side stream: models stepped from two streams (two requests) never
share one, whose next fork would wait for only one of them.
"""
from __future__ import annotations

import torch

_streams: dict[tuple[torch.device, int], torch.cuda.Stream] = {}  # per (device, main stream)


class Beside:
    def __init__(self, main: torch.cuda.Stream, side: torch.cuda.Stream, keep: torch.Tensor):
        self.main, self.side, self.keep = main, side, keep
        self.context = torch.cuda.stream(side)
        self.context.__enter__()
        self.inside = True

    @classmethod
    def fork(cls, x: torch.Tensor) -> "Beside | None":
        """From here on, queue on a side stream that starts after the main stream's work so far (x, its input, kept
        until join); None for a tensor that is not on a CUDA device."""
        if not x.is_cuda:
            return None
        main = torch.cuda.current_stream(x.device)
        key = (x.device, main.cuda_stream)
        if key not in _streams:
            _streams[key] = torch.cuda.Stream(x.device)
        side = _streams[key]
        side.wait_stream(main)
        return cls(main, side, x)

    def leave(self) -> None:
        """Queue on the main stream again; the side stream's work goes on."""
        if self.inside:
            self.context.__exit__(None, None, None)
            self.inside = False

    def join(self) -> None:
        """The main stream waits for the side stream's work (leaving it first if still inside)."""
        self.leave()
        self.main.wait_stream(self.side)
        self.keep = None
