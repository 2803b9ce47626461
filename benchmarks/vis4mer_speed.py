"""ViS4mer beside an equal-shape Transformer at the paper's input, (1, 11,820, 1,024): 60 frames × 197 ViT-L patch
tokens of width 1,024 (Islam & Bertasius 2022 report ViS4mer 2.63× faster and 8× less GPU memory than a pure
self-attention model of the same shape). Forward + backward time and peak memory, random weights, float32 and bf16
autocast. A benchmark, not a test: the checks run first, the table is printed last.

    python benchmarks/vis4mer_speed.py [--length 11820] [--repeats 10] [--device cpu]   (cpu: a smoke test, no memory)

Rows:
- ViS4mer: 3 stages of [LayerNorm, S4 (N 64, LegS, causal, GELU, Linear), Dropout, residual, AvgPool 2, Linear H ->
  H/2, GELU], widths 1024 -> 128 (the official decoder);
- the same decoder with multi-head self-attention (16 heads, non-causal) in place of S4, attention computed by
  torch's scaled_dot_product_attention (flash / memory-efficient kernels: memory linear in L), and the same with the
  explicit softmax(QKᵀ)V (the math backend: the L × L matrix is materialized, as in a 2022 Transformer);
- an isotropic nn.TransformerEncoder of 3 layers at width 1,024 (16 heads, FFN 4,096), the usual "Transformer" of
  that shape.
"""
from __future__ import annotations

import argparse
import contextlib
import time

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from ssmkit.models import ViS4mer


def models(dropout: float = 0.2) -> dict:
    attention = {"n_heads": 16, "causal": False}
    return {
        "ViS4mer (S4)": (lambda: ViS4mer(1024, 10, dropout=dropout), contextlib.nullcontext),
        "same decoder, attention (SDPA)": (lambda: ViS4mer(1024, 10, layer="attention", layer_options=attention,
                                                           dropout=dropout), contextlib.nullcontext),
        "same decoder, attention (explicit L×L)": (lambda: ViS4mer(1024, 10, layer="attention",
                                                                   layer_options=attention, dropout=dropout),
                                                   lambda: sdpa_kernel(SDPBackend.MATH)),
        "nn.TransformerEncoder 3 × 1024": (lambda: Encoder(), contextlib.nullcontext),
    }


class Encoder(nn.Module):
    """3 post-norm Transformer layers at width 1,024 (16 heads, FFN 4,096, GELU, dropout 0.2), mean, Linear."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(1024, 16, 4096, 0.2, "gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
        self.decoder = nn.Linear(1024, 10)

    def forward(self, x):
        return self.decoder(self.encoder(x).mean(1))


def check(device: str, length: int) -> None:
    """The stages halve widths and lengths, and the model on ``device`` (on CUDA the chunked S4 path) in float32
    matches its float64 CPU copy."""
    model = ViS4mer(1024, 10, l_max=length, dropout=0.0).eval()
    x = torch.randn(1, length, 1024)
    seen = []
    for layer in model.layers:
        layer.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape[1:])))
    with torch.no_grad():
        reference = model.double()(x.double())
        got = model.float().to(device)(x.to(device)).cpu().double()
    err = ((got - reference).norm() / reference.norm()).item()
    assert seen[:3] == [(length, 1024), (length // 2, 512), (length // 4, 256)], seen
    assert err < 1e-3, f"{device} float32 vs CPU float64: relative error {err:.1e}"
    print(f"check: stage inputs {seen[:3]}; {device} float32 vs CPU float64 relative error {err:.1e}")


def measure(build, backend, length: int, repeats: int, bf16: bool, device: str) -> tuple[float, float, float]:
    """(ms per forward + backward, peak GiB, peak GiB above the weights and input) for one (1, length, 1024) input;
    the memory is nan on a CPU."""
    torch.manual_seed(0)
    model = build().to(device).train()
    x = torch.randn(1, length, 1024, device=device)
    y = torch.randint(0, 10, (1,), device=device)
    autocast = torch.autocast(device, torch.bfloat16) if bf16 else contextlib.nullcontext()
    cuda = device == "cuda"

    def step():
        with autocast, backend():
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        model.zero_grad(set_to_none=True)

    step()  # warm-up: kernels, autotuning, graphs
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if cuda else float("nan")
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if cuda:
        torch.cuda.synchronize()
    ms = (time.perf_counter() - start) / repeats * 1e3
    peak = torch.cuda.max_memory_allocated() if cuda else float("nan")
    del model, x
    if cuda:
        torch.cuda.empty_cache()
    return ms, peak / 2 ** 30, (peak - base) / 2 ** 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=11820, help="tokens per input (60 frames × 197)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.device == "cuda":
        require_cuda("--device cpu --length 256")
    check(args.device, min(args.length, 1024))
    rows = []
    for bf16 in (False, True):
        for name, (build, backend) in models().items():
            try:
                ms, peak, above = measure(build, backend, args.length, args.repeats, bf16, args.device)
                rows.append((name, "bf16" if bf16 else "fp32", ms, peak, above))
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                rows.append((name, "bf16" if bf16 else "fp32", float("nan"), float("inf"), float("inf")))
            print(f"measured {name} {'bf16' if bf16 else 'fp32'}", flush=True)
    print(f"\nViS4mer vs equal-shape Transformers, input (1, {args.length}, 1024), forward + backward, "
          f"{torch.cuda.get_device_name() if args.device == 'cuda' else args.device}")
    print(f"{'model':42s} {'precision':>9s} {'ms':>9s} {'peak GiB':>9s} {'activ. GiB':>10s} {'time / ViS4mer':>14s} "
          f"{'activ. / ViS4mer':>16s}")
    for name, precision, ms, peak, above in rows:
        ours = next(r for r in rows if r[1] == precision and r[0] == "ViS4mer (S4)")
        print(f"{name:42s} {precision:>9s} {ms:9.1f} {peak:9.2f} {above:10.2f} {ms / ours[2]:14.2f} "
              f"{above / ours[4]:16.2f}")
    print("paper (Islam & Bertasius 2022): ViS4mer 2.63x faster, 8x less GPU memory than the self-attention model")


if __name__ == "__main__":
    main()
