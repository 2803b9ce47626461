"""The one line a GPU benchmark exits with where torch sees no CUDA GPU, instead of torch's AssertionError."""
import sys
from pathlib import Path

import torch


def require_cuda(on_cpu: str = "") -> None:
    """Exit unless torch sees a CUDA GPU; on_cpu: the options that run the script on a CPU instead, if any."""
    if not torch.cuda.is_available():
        sys.exit(f"{Path(sys.argv[0]).name}: needs a CUDA GPU (torch.cuda.is_available() is False)"
                 + (f"; on a CPU: {on_cpu}" if on_cpu else ""))
