"""SaShiMi's autoregressive generation speed on one GPU, in samples per second: ssmkit (plain loop, and the CUDA graph
over one pooling cycle with each level's blocks fused into one op or stepped block by block) beside the official
standalone SaShiMi (state-spaces/s4 models/sashimi/sashimi.py, its step in 'diagonal' mode), both at the SC09 size
(d_model 64, 8 layers, pool (4, 4), expand 2, ff 2, S4 N=64), random weights. A benchmark, not a test: exactness is
checked first, the table is printed last.

    python benchmarks/sashimi_generation.py [--official DIR] [--batches 1,16,128] [--samples 1600] [--profile]
        [--configs 16:64:8,16:32:4] [--fused-only] [--unet]
    python benchmarks/sashimi_generation.py --cpu [--batches 1,16] [--samples 256]   (those are its --cpu defaults)

--cpu: on the CPU, each level's blocks stepped one by one against the level stepped as one op (ops.block_step's torch
reference, what generate takes there), same tokens checked;

--configs: the fused op's block configurations to compare, warps:row_elems:ssm_elems (block_step.py);
--profile: the kernels of one pooling cycle at batch 1 (plain loop), per sample;
--unet: the official U-Net variant's model (sashimi-sc09-unet) instead, its down and up levels fused too (with
--official, the official standalone's U-Net beside it);
--fused-only: time only the CUDA graph with fused levels (what generate runs), and print each of its rates beside the
median: at batch 1 the plain loop's 100-200 samples/s would take most of a run of many samples, and many samples
(8,000: half a second a call) keep the capture's varying cost from moving the rate.

The official loop: embedding -> Sashimi.step -> Linear -> softmax sampling (torch.multinomial), one token at a time.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from block_step import set_config  # benchmarks/block_step.py
from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from ssmkit.models import Sashimi, generate

SIZE = dict(d_model=64, n_layers=8, pool=[4, 4], expand=2, ff=2)


def ours(device: str = "cuda", unet: bool = False) -> Sashimi:
    """The SC09 model; with unet, the official U-Net experiment's (sashimi-sc09-unet: one SSM per channel, plain
    pooling Linears)."""
    if unet:
        return Sashimi(1, 256, vocab_size=256, layer="s4", layer_options={"d_state": 64}, unet=True,
                       pool_weight_norm=False, **SIZE).to(device).eval()
    return Sashimi(1, 256, vocab_size=256, layer="s4", layer_options={"n_ssm": 1, "d_state": 64},
                   **SIZE).to(device).eval()


def check(model: Sashimi) -> list[str]:
    """The graph replays the plain loop (same seed: same samples and logits), and the logits are the forward pass's,
    fused and not."""
    failures = []
    for B in (1, 4):
        prompt = torch.randint(0, 256, (B, 9), device="cuda")
        for fused in (True, False):
            model.fused_step = fused
            plain = generate(model, prompt, 55, seed=3, cuda_graph=False)
            graph = generate(model, prompt, 55, seed=3)
            same = torch.equal(plain[0], graph[0]) and torch.equal(plain[1], graph[1])
            if not same:
                failures.append(f"batch {B}, fused {fused}: graph != plain loop")
            tokens, logits = plain
            with torch.no_grad():
                full = model(tokens[:, :64])[:, 8:63]  # the predictions of tokens 9..63, drawn from logits[:, 0..54]
            err = ((logits - full).norm() / full.norm()).item()
            if err > 1e-4:
                failures.append(f"batch {B}, fused {fused}: step logits vs forward: relative error {err:.1e}")
            print(f"check batch {B}, fused {fused}: graph == plain loop: {same}; step vs forward relative error "
                  f"{err:.1e}")
    model.fused_step = True
    return failures


def profile(model: Sashimi, cycles: int = 4) -> None:
    """The kernels of the plain loop at batch 1 (what the graph replays), per sample."""
    from torch.profiler import ProfilerActivity, profile as torch_profile
    prompt = torch.full((1, 1), 128, device="cuda")
    generate(model, prompt, 32, seed=0, cuda_graph=False)
    torch.cuda.synchronize()
    n = 16 * cycles
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        generate(model, prompt, n, seed=0, cuda_graph=False)
        torch.cuda.synchronize()
    events = sorted((e for e in prof.key_averages() if e.self_device_time_total > 0),
                    key=lambda e: -e.self_device_time_total)
    print(f"\nbatch 1, fused {model.fused_step}: kernels per sample (plain loop, {n} samples)")
    for e in events[:14]:
        print(f"  {e.self_device_time_total / n:8.2f} µs  x{e.count / n:<6.2f} {e.key[:80]}")
    print(f"  {sum(e.self_device_time_total for e in events) / n:8.2f} µs, {sum(e.count for e in events) / n:.1f} "
          "kernels: all")


def samples_per_second(run, batch: int, n: int, repeats: int = 3, rates_out: list | None = None) -> float:
    """The loop's steady rate, from the times of n and n/4 samples, so that each call's fixed costs cancel: generate
    captures a CUDA graph per call, which on one H100 made 400 samples at batch 1 read 1,020 samples/s and 1,600 read
    2,907 when each call was timed whole. The median of `repeats` such differences: the capture's own time varies
    from call to call, and one difference at 800 samples read 34,151 and 13,114 samples/s for the same code at batch
    1 (one H200, 2026-12-06)."""
    run(batch, min(n, 64))  # warm-up: compilation, cuBLAS workspaces
    sync = torch.cuda.synchronize if torch.cuda.is_available() else lambda: None

    def seconds(k: int) -> float:
        sync()
        start = time.perf_counter()
        run(batch, k)
        sync()
        return time.perf_counter() - start
    short = max(1, n // 4)
    rates = sorted(batch * (n - short) / max(seconds(n) - seconds(short), 1e-9) for _ in range(repeats))
    if rates_out is not None:
        rates_out.extend(rates)
    return rates[repeats // 2]


def official(directory: str, unet: bool = False):
    """A sampler over the official standalone SaShiMi, or None with the reason printed."""
    sys.path[:0] = [directory, os.path.join(directory, "extensions", "kernels")]
    try:
        from models.sashimi.sashimi import Sashimi as Official  # noqa: E402  (the official code, from the checkout)
    except Exception as e:  # noqa: BLE001 (report any import failure and go on without it)
        print(f"official: not importable ({type(e).__name__}: {e})")
        return None
    backbone = Official(**SIZE, unet=unet).cuda().eval()  # its U-Net: S4/FF blocks on the down path too
    backbone.setup_rnn("diagonal")
    embed, head = torch.nn.Embedding(256, 64).cuda(), torch.nn.Linear(64, 256).cuda()

    @torch.no_grad()
    def run(batch: int, n: int):
        x = torch.full((batch,), 128, device="cuda")
        state = backbone.default_state(batch, device="cuda")
        for _ in range(n):
            y, state = backbone.step(embed(x), state)
            x = torch.multinomial(torch.softmax(head(y), -1), 1)[:, 0]
    return run


def on_cpu(batches: list[int], n: int, unet: bool = False) -> None:
    """Block by block against the levels as one op, plain loop on the CPU, same seed: same tokens, then the rates."""
    torch.manual_seed(0)
    model = ours("cpu", unet)
    rows = []
    for B in batches:
        prompt = torch.full((B, 1), 128)
        rates, tokens = {}, {}
        for fused in (False, True):
            model.fused_step = fused
            tokens[fused] = generate(model, prompt, 64, seed=0)[0]
            rates[fused] = samples_per_second(lambda b, k: generate(model, prompt, k, seed=0), B, n, repeats=1)
        rows.append((B, rates[False], rates[True], torch.equal(tokens[False], tokens[True])))
    print(f"\nCPU ({torch.get_num_threads()} threads), samples/s")
    print("| batch | block by block | levels as one op | same tokens |")
    print("|---|---|---|---|")
    for B, plain, fused, same in rows:
        print(f"| {B} | {plain:,.0f} | {fused:,.0f} ({fused / plain:.2f}x) | {same} |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--official", default=None)
    p.add_argument("--batches", default=None, help="default 1,16,128 (with --cpu: 1,16)")
    p.add_argument("--samples", type=int, default=None, help="default 1600 (with --cpu: 256)")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--configs", default="16:64:8")
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--fused-only", action="store_true")
    p.add_argument("--unet", action="store_true")
    a = p.parse_args()
    a.batches = a.batches or ("1,16" if a.cpu else "1,16,128")
    a.samples = a.samples or (256 if a.cpu else 1600)
    if a.cpu:
        return on_cpu([int(b) for b in a.batches.split(",")], a.samples, a.unet)
    require_cuda(on_cpu="--cpu")
    torch.manual_seed(0)
    model = ours(unet=a.unet)
    failures = check(model)
    if a.profile:
        for fused in (False, True):
            model.fused_step = fused
            profile(model)
    theirs = official(a.official, a.unet) if a.official else None
    rows, configs = [], a.configs.split(",")
    for B in (int(b) for b in a.batches.split(",")):
        prompt = torch.full((B, 1), 128, device="cuda")
        row = {"batch": B}
        if not a.fused_only:
            model.fused_step = False
            row["graph"] = samples_per_second(lambda b, n: generate(model, prompt, n, seed=0), B, a.samples)
            row["plain"] = samples_per_second(lambda b, n: generate(model, prompt, n, seed=0, cuda_graph=False), B,
                                              a.samples // 4)
        model.fused_step = True
        for config in configs:
            set_config(config)
            rates = []
            row[f"fused {config}"] = samples_per_second(lambda b, n: generate(model, prompt, n, seed=0), B,
                                                         a.samples, rates_out=rates)
            print(f"batch {B}, fused {config}: rates {', '.join(f'{r:,.0f}' for r in rates)}", flush=True)
        set_config(configs[0])
        if theirs is not None:
            row["official"] = samples_per_second(theirs, B, a.samples // 4)
        rows.append(row)
        print(row, flush=True)
    fused = [f"fused {c}" for c in configs]
    print(f"\n| batch | official samples/s | ssmkit plain | ssmkit graph | {' | '.join('graph, ' + f for f in fused)} "
          "| best vs official | real time (16 kHz) |")
    print("|---" * (6 + len(fused)) + "|")
    for r in rows:
        off, best = r.get("official"), max(r[f] for f in fused)
        ratio = f"{best / off:.1f}x" if off else "-"
        plain, graph = (f"{r[k]:,.0f}" if k in r else "-" for k in ("plain", "graph"))
        print(f"| {r['batch']} | {f'{off:,.0f}' if off else '-'} | {plain} | {graph} | "
              f"{' | '.join(f'{r[f]:,.0f}' for f in fused)} | {ratio} | {best / 16000:.2f}x |")
    if failures:
        sys.exit(f"FAILED: {failures}")


if __name__ == "__main__":
    main()
