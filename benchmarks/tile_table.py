"""The table of a Triton op timed at several tile sizes beside its references and its floor, for the norm benchmarks
(scalar_norm.py, window_norm.py): their command line, one row per shape, forward + backward in ms (do_bench
medians)."""
from __future__ import annotations

import argparse

import torch
from triton.testing import do_bench


def arguments(doc: str, shapes: str, tile: int) -> tuple[list[tuple[int, int, int]], list[int]]:
    """--shapes BxLxH,... (default ``shapes``) and --tiles T,... (default the op's ``tile``) from the command line."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default=shapes)
    p.add_argument("--tiles", default=str(tile))
    args = p.parse_args()
    return ([tuple(map(int, shape.split("x"))) for shape in args.shapes.split(",")],
            [int(t) for t in args.tiles.split(",")])


def fwd_bwd(fn, dy):
    """A callable that runs fn() and its backward against dy."""
    return lambda: torch.autograd.backward(fn(), dy)


def median_ms(fn) -> float:
    return do_bench(fn, warmup=10, rep=60, return_mode="median")


def row(cells: list[str], module, tiles: list[int], triton_fn, references: list, dy, floor_ms: float) -> str:
    """One row: ``cells`` first, then triton_fn() + backward with module.TILE at each tile, each reference, and the
    floor with the share of it that the best tile reaches."""
    tiled = []
    for tile in tiles:
        module.TILE = tile
        tiled.append(median_ms(fwd_bwd(triton_fn, dy)))
    times = [median_ms(fwd_bwd(fn, dy)) for fn in references]
    return "| " + " | ".join([*cells, *(f"{t:.3f}" for t in tiled + times),
                              f"{floor_ms:.3f} ({floor_ms / min(tiled):.0%})"]) + " |"


def print_table(bandwidth: float, head: list[str], tiles: list[int], reference_names: list[str], rows: list[str]):
    print(f"copy {bandwidth / 1e12:.2f} TB/s; ms, forward + backward")
    columns = [*head, *(f"Triton, tile {t}" for t in tiles), *reference_names, "floor (of the best tile)"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    print("\n".join(rows))
