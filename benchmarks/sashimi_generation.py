"""SaShiMi's autoregressive generation speed on one GPU, in samples per second: ssmkit (plain loop and CUDA graph over
one pooling cycle) beside the official standalone SaShiMi (state-spaces/s4 models/sashimi/sashimi.py, its step in
'diagonal' mode), both at the SC09 size (d_model 64, 8 layers, pool (4, 4), expand 2, ff 2, S4 N=64), random weights.
A benchmark, not a test: exactness is checked first, the table is printed last.

    python benchmarks/sashimi_generation.py [--official DIR] [--batches 1,16,128] [--samples 1600]

The official loop: embedding -> Sashimi.step -> Linear -> softmax sampling (torch.multinomial), one token at a time.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from ssmkit.models import Sashimi, generate

SIZE = dict(d_model=64, n_layers=8, pool=[4, 4], expand=2, ff=2)


def ours() -> Sashimi:
    return Sashimi(1, 256, vocab_size=256, layer="s4", layer_options={"n_ssm": 1, "d_state": 64}, **SIZE).cuda().eval()


def check(model: Sashimi) -> list[str]:
    """The graph replays the plain loop (same seed: same samples and logits), and the logits are the forward pass's."""
    prompt = torch.randint(0, 256, (4, 9), device="cuda")
    plain = generate(model, prompt, 55, seed=3, cuda_graph=False)
    graph = generate(model, prompt, 55, seed=3)
    failures = []
    if not (torch.equal(plain[0], graph[0]) and torch.equal(plain[1], graph[1])):
        failures.append("graph != plain loop")
    tokens, logits = plain
    with torch.no_grad():
        full = model(tokens[:, :64])[:, 8:63]  # the predictions of tokens 9..63, drawn from logits[:, 0..54]
    err = ((logits - full).norm() / full.norm()).item()
    if err > 1e-4:
        failures.append(f"step logits vs forward: relative error {err:.1e}")
    print(f"check: graph == plain loop: {not failures}; step vs forward relative error {err:.1e}")
    return failures


def samples_per_second(run, batch: int, n: int) -> float:
    run(batch, min(n, 64))  # warm-up: compilation, graph capture, cuBLAS workspaces
    torch.cuda.synchronize()
    start = time.perf_counter()
    run(batch, n)
    torch.cuda.synchronize()
    return batch * n / (time.perf_counter() - start)


def official(directory: str):
    """A sampler over the official standalone SaShiMi, or None with the reason printed."""
    sys.path[:0] = [directory, os.path.join(directory, "extensions", "kernels")]
    try:
        from models.sashimi.sashimi import Sashimi as Official  # noqa: E402  (the official code, from the checkout)
    except Exception as e:  # noqa: BLE001 (report any import failure and go on without it)
        print(f"official: not importable ({type(e).__name__}: {e})")
        return None
    backbone = Official(**SIZE).cuda().eval()
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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--official", default=None)
    p.add_argument("--batches", default="1,16,128")
    p.add_argument("--samples", type=int, default=1600)
    a = p.parse_args()
    torch.manual_seed(0)
    model = ours()
    failures = check(model)
    theirs = official(a.official) if a.official else None
    rows = []
    for B in (int(b) for b in a.batches.split(",")):
        prompt = torch.full((B, 1), 128, device="cuda")
        row = {"batch": B}
        row["graph"] = samples_per_second(lambda b, n: generate(model, prompt, n, seed=0), B, a.samples)
        row["plain"] = samples_per_second(lambda b, n: generate(model, prompt, n, seed=0, cuda_graph=False), B,
                                          a.samples // 4)
        if theirs is not None:
            row["official"] = samples_per_second(theirs, B, a.samples // 4)
        rows.append(row)
        print(row, flush=True)
    print("\n| batch | official samples/s | ssmkit plain | ssmkit graph | graph vs official | real time (16 kHz) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        off = r.get("official")
        ratio = f"{r['graph'] / off:.1f}x" if off else "-"
        print(f"| {r['batch']} | {f'{off:,.0f}' if off else '-'} | {r['plain']:,.0f} | {r['graph']:,.0f} | {ratio} | "
              f"{r['graph'] / 16000:.2f}x |")
    if failures:
        sys.exit(f"FAILED: {failures}")


if __name__ == "__main__":
    main()
