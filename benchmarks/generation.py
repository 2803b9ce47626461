"""Recurrent generation speed on one GPU: a stack of SSM layers stepped token by token, plain vs CUDA graph, beside the
official state-spaces/s4 S4Block.step; then a byte LM's `generate` against a same-size GPT-2 with its KV cache.
A benchmark, not a test: exactness is checked first, the table is printed last.

    python benchmarks/generation.py [--official DIR] [--batches 1,16,256] [--contexts 1024,4096,16384]

Stack: 4 layers of width 256 (N = 64, GELU + Linear + GLU inside each, as S4Block), x <- x + layer.step(x), float32.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit
from ssmkit.models import SequenceModel, generate

H, N, DEPTH = 256, 64, 4


def tokens_per_second(step, batch: int, steps: int = 300) -> float:
    for _ in range(20):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def stack_stepper(layers, batch: int, official: bool):
    x = torch.randn(batch, H, device="cuda")
    states = [layer.default_state(batch, device="cuda") if official else layer.default_state(batch)
              for layer in layers]

    def step():
        nonlocal x
        h = x
        for i, layer in enumerate(layers):
            y, states[i] = layer.step(h, states[i])
            h = h + y
        x = h
    return step


def graphed(layers, batch: int):
    """One stack step captured as a CUDA graph over static buffers, states updated in place (what generate does for
    a whole model)."""
    x = torch.randn(batch, H, device="cuda")
    states = [layer.default_state(batch) for layer in layers]
    for layer in layers:
        layer.step_in_place = True

    def body():
        h = x
        for i, layer in enumerate(layers):
            y, new = layer.step(h, states[i])
            states[i].copy_(new)
            h = h + y
        x.copy_(h)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            body()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()
    return graph.replay


def official_layers(kind: str, directory: str):
    sys.path[:0] = [directory, os.path.join(directory, "extensions", "kernels")]
    from models.s4.s4 import S4Block  # noqa: E402  (the official code, from the checkout given)
    layers = [S4Block(d_model=H, mode="dplr" if kind == "S4" else "diag", d_state=N, transposed=False,
                      final_act="glu").cuda().eval() for _ in range(DEPTH)]
    for layer in layers:
        layer.setup_step()
    return layers


def ours(kind: str):
    make = (lambda: ssmkit.S4(d_model=H, d_state=N)) if kind == "S4" else (
        lambda: ssmkit.S4D(d_model=H, d_state=N, init="lin"))
    return [make().cuda().eval() for _ in range(DEPTH)]


def stack_table(batches, official_dir) -> list[dict]:
    rows = []
    with torch.no_grad():
        for kind in ("S4", "S4D"):
            mine = ours(kind)
            theirs = official_layers(kind, official_dir) if official_dir else None
            for B in batches:
                for layer in mine:
                    layer.step_in_place = False
                row = {"layer": kind, "batch": B, "plain": tokens_per_second(stack_stepper(mine, B, False), B),
                       "graph": tokens_per_second(graphed(mine, B), B)}
                if theirs:
                    row["official"] = tokens_per_second(stack_stepper(theirs, B, True), B)
                rows.append(row)
                print(row, flush=True)
    return rows


def check_exactness() -> None:
    """Graph and plain loop draw the same tokens with the same seed; logits equal the full forward pass."""
    model = SequenceModel(256, 256, layer="s4d", d_model=H, n_layers=DEPTH, vocab_size=256, pool="none").cuda()
    prompt = torch.randint(0, 256, (16, 33), device="cuda")
    plain = generate(model, prompt, 200, temperature=1.0, top_p=0.95, seed=0, cuda_graph=False)
    fast = generate(model, prompt, 200, temperature=1.0, top_p=0.95, seed=0)
    with torch.no_grad():
        full = model(fast[0][:, :-1])[:, prompt.shape[1] - 1:]
    rel = ((fast[1] - full).norm() / full.norm()).item()
    print(f"exact: tokens equal {torch.equal(plain[0], fast[0])}, logits equal {torch.equal(plain[1], fast[1])}, "
          f"logits vs forward rel {rel:.1e}", flush=True)
    assert torch.equal(plain[0], fast[0]) and rel < 1e-4


def lm_table(contexts, batch: int = 16, new: int = 1024) -> list[dict]:
    """Decode speed at a given context: ssmkit's byte LM (independent of context) vs GPT-2 with a KV cache."""
    model = SequenceModel(256, 256, layer="s4d", d_model=H, n_layers=DEPTH, vocab_size=256, pool="none").cuda()
    rows = []
    for ctx in contexts:
        prompt = torch.randint(0, 256, (batch, ctx), device="cuda")
        times = {4: [], new: []}
        for n in (4, new) * 4:  # decode time = time(new tokens) − time(4 tokens): prefill and capture cancel
            torch.cuda.synchronize()
            start = time.perf_counter()
            generate(model, prompt, n, seed=0)
            torch.cuda.synchronize()
            times[n].append(time.perf_counter() - start)
        decode = min(times[new][1:]) - min(times[4][1:])  # the first run of each compiles and warms up
        row = {"context": ctx, "ssmkit": batch * (new - 4) / decode}
        row["gpt2"] = gpt2_decode(ctx, batch, new)
        rows.append(row)
        print(row, flush=True)
    return rows


def gpt2_decode(ctx: int, batch: int, new: int) -> float | None:
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return None
    config = GPT2Config(vocab_size=256, n_positions=ctx + new + 8, n_embd=H, n_layer=DEPTH, n_head=4)
    model = GPT2LMHeadModel(config).cuda().eval()
    prompt = torch.randint(0, 256, (batch, ctx), device="cuda")
    times = {4: [], new: []}
    with torch.no_grad():
        for n in (4, new) * 2:
            torch.cuda.synchronize()
            start = time.perf_counter()
            model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=True, pad_token_id=0)
            torch.cuda.synchronize()
            times[n].append(time.perf_counter() - start)
    return batch * (new - 4) / (times[new][1] - times[4][1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", default=None)
    p.add_argument("--batches", default="1,16,256")
    p.add_argument("--contexts", default="1024,4096,16384")
    a = p.parse_args()
    require_cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    check_exactness()
    stack = stack_table([int(b) for b in a.batches.split(",")], a.official)
    lm = lm_table([int(c) for c in a.contexts.split(",")])
    print("\n| stack | batch | official tok/s | ssmkit plain | ssmkit graph | graph vs official |")
    print("|---|---|---|---|---|---|")
    for r in stack:
        off = r.get("official")
        ratio = f"{r['graph'] / off:.1f}x" if off else "-"
        print(f"| 4 x {r['layer']} | {r['batch']} | {off or 0:,.0f} | {r['plain']:,.0f} | {r['graph']:,.0f} | "
              f"{ratio} |")
    print("\n| context | ssmkit byte LM tok/s (batch 16) | GPT-2 + KV cache tok/s | ratio |")
    print("|---|---|---|---|")
    for r in lm:
        g = r["gpt2"]
        print(f"| {r['context']} | {r['ssmkit']:,.0f} | {g or 0:,.0f} | {r['ssmkit'] / g if g else 0:.1f}x |")


if __name__ == "__main__":
    main()
