import importlib.util
import os
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # before torch loads: as ssmkit/__init__.py says, for a busy CPU

import pytest  # noqa: E402
import torch  # noqa: E402

if not torch.cuda.is_available():  # without a GPU, the Triton kernels run through Triton's CPU interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _interpreter_takes_numpy_2_4() -> None:
    """Triton 3.6's interpreter gives a run-time scalar (a kernel argument such as a length) to Python as its index by
    int() of the one-element array that holds it, which NumPy 2.4 refuses ("only 0-dimensional arrays can be
    converted to Python scalars"): every kernel whose loop runs to a run-time bound (`for l in range(n)`) then failed
    in the interpreter (33 tests: block_step, Cauchy, Vandermonde, window_norm), while on a GPU the same kernels
    compile as before. Reads that one element instead; the interpreter alone is affected, and only in the tests."""
    try:
        from triton.runtime import interpreter
    except ImportError:
        return
    original = getattr(interpreter, "_patch_lang_tensor", None)
    if original is None or getattr(original, "ssmkit_index", False):
        return

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))
    patched.ssmkit_index = True
    interpreter._patch_lang_tensor = patched


_interpreter_takes_numpy_2_4()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def benchmark_script(name: str):
    """benchmarks/NAME.py imported as a module (the benchmarks are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖."""
    return ((a - b).norm() / b.norm()).item()


class PythonNode(torch.autograd.Function):
    """The identity as a Python autograd node, as the replay of torch.cuda.make_graphed_callables is: the CPU
    stand-ins for a CUDA graph's capture serve their replays through it."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g


def random_stable(H: int, N2: int, R: int = 1, Cch: int = 1, dtype=torch.complex128):
    """Random DPLR/diagonal parameters with Re λ < 0 and a small low-rank part."""
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    Lambda = torch.complex(-torch.rand(H, N2, dtype=real) - 0.05, 4 * torch.randn(H, N2, dtype=real))
    P = 0.5 * torch.randn(R, H, N2, dtype=dtype)
    B = torch.randn(H, N2, dtype=dtype)
    C = torch.randn(Cch, H, N2, dtype=dtype)
    dt = torch.exp(torch.empty(H, dtype=real).uniform_(-5, -1))
    return Lambda, P, B, C, dt


CHUNKS = [(0, 5), (5, 6), (6, 37)]  # three uneven chunks, one of length 1


def three_views(layer, u, chunks=CHUNKS, per_position=None):
    """(forward over u, step by step, forward over chunks with the state carried), each (B, L, H).

    per_position(a, b) -> dict of per-position keyword tensors (B, b − a) for positions [a, b) (e.g. S5's dt_scale);
    a step gets their column at its position.
    """
    kw = per_position or (lambda a, b: {})
    y, _ = layer(u, **kw(0, u.shape[1]))
    state, steps = layer.default_state(u.shape[0]), []
    with torch.no_grad():
        for t in range(u.shape[1]):
            y_t, state = layer.step(u[:, t], state, **{k: v[:, 0] for k, v in kw(t, t + 1).items()})
            steps.append(y_t)
    state, parts = layer.default_state(u.shape[0]), []
    for a, b in chunks:
        y_c, state = layer(u[:, a:b], state, **kw(a, b))
        parts.append(y_c)
    return y, torch.stack(steps, 1), torch.cat(parts, 1)
