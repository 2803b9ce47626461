"""ssmkit beside the official research code: initializations side by side, and kernels/outputs with copied weights.

    python3 benchmarks/versus_official.py --official DIR [--markdown docs/versus_official.md]

DIR holds checkouts of the official repositories, each in a folder named as on GitHub: s4 (state-spaces/s4),
mega (facebookresearch/mega), SGConv (ctlllll/SGConv), dss (ag1988/dss), dlr (ag1988/dlr), liquid-s4
(raminmh/liquid-s4), ViS4mer (md-mohaiminul/ViS4mer), SSSD (AI4HealthUOL/SSSD), ccnn (david-knigge/ccnn); a
missing one is skipped. S5 (lindermanlab/S5) is JAX: its init rows compare our init with the official formulas, and
where jax and flax import (a separate environment that also sees torch will do), its S5SSM, SequenceLayer and
BatchClassificationModel are built in float64 and their weights copied into ours (else a 'skipped' line). SaShiMi
is the standalone models/sashimi/sashimi.py over the standalone S4; S4ND is the training code's module
(src/models/sequence/modules/s4nd.py over kernels/ssm.py); the S4 LRA models are the training code's encoder, backbone
and decoder (src/models/sequence/backbones, src/tasks) as its configs/experiment/lra files compose them, beside our
lra-* experiments as the trainer builds them; the Mega LRA models fairseq/models/lra's LRAModel over
MegaLRAEncoder from each task's README command line, beside our mega-lra-* experiments; CCNN the ResNet of
models/resnet.py with its S4 blocks, SeparableFlexConv and MAGNet, built from its configs' values without hydra. Runs
on CPU (the official code falls back to its naive kernels; ViS4mer's has none, so its pykeops Cauchy sum is written
out here, and SSSD's naive one sums one member of each conjugate pair only, so its rows give both); needs numpy,
scipy, einops and opt_einsum, and stubs the few framework imports (pytorch_lightning's rank_zero_only, omegaconf's
DictConfig, ListConfig and OmegaConf, hydra, the s4 training code's logger, fairseq's incremental-state decorator,
its model base classes and registry, wandb) that the modules import but these checks never use. Not part of the test suite.

Each family is built both ways with the same seed: the "init" rows are statistics of the fresh modules (the random
draws differ, the distributions should not), the "copied" rows copy the official module's weights into ours (complex
parameters conjugated where the official code keeps the Im < 0 half) and give ‖ours − official‖ / ‖official‖ of the
kernel or the layer output, in float64.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import math
import sys
import types
from pathlib import Path
from unittest import mock

import torch

import ssmkit
from ssmkit import hippo
from ssmkit.kernels.diag import real_part_inverse

ROWS: list[tuple[str, str, str, str]] = []  # (family, quantity, official, ours)


def row(family: str, quantity: str, official, ours) -> None:
    fmt = lambda v: v if isinstance(v, str) else f"{v:.4g}"  # noqa: E731
    ROWS.append((family, quantity, fmt(official), fmt(ours)))


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def agree(family: str, quantity: str, ours: torch.Tensor, official: torch.Tensor) -> None:
    row(family, quantity + " (copied weights): rel. difference", "—", f"{rel(ours.detach(), official.detach()):.1e}")


# -- loading the official modules -------------------------------------------------------------------------------------
class _AttrDict(dict):
    """Enough of omegaconf.DictConfig for the DSS/DLR kernels: a dict with attribute access."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value


def _stub(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module
    return module


def _package(name: str, path: Path) -> types.ModuleType:
    """A package that points at the folder without running its __init__ (which imports the training framework)."""
    module = _stub(name, __path__=[str(path)])
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _forget(name: str) -> None:
    """Drop a package and its submodules from sys.modules: two checkouts both name their package src."""
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def install_stubs() -> None:
    utilities = _stub("pytorch_lightning.utilities", rank_zero_only=lambda f: f)
    _stub("pytorch_lightning", utilities=utilities)
    _stub("omegaconf", DictConfig=_AttrDict)
    if importlib.util.find_spec("scipy") is None:  # the official S4 imports scipy.special for inits not used here
        _stub("scipy", special=_stub("scipy.special"))


def _quiet(call):
    """Run a constructor or forward of the official code with its prints and warnings silenced."""
    import contextlib
    import io
    import warnings
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


# -- S4 and S4D (state-spaces/s4, models/s4/s4.py) ---------------------------------------------------------------------
def copy_dplr(ours_kernel, official_kernel) -> None:
    """Official SSMKernelDPLR/Diag (Λ with Im < 0, stored as A_imag = −Im) into ours (Im > 0): conjugate P, B, C."""
    c = lambda t: torch.view_as_real(torch.view_as_complex(t.detach().contiguous()).conj().resolve_conj())  # noqa: E731
    with torch.no_grad():
        ours_kernel.log_dt.copy_(official_kernel.inv_dt[:, 0])
        ours_kernel.A_real.copy_(official_kernel.A_real)
        ours_kernel.A_imag.copy_(official_kernel.A_imag)
        ours_kernel.B.copy_(c(official_kernel.B)[0])
        ours_kernel.C.copy_(c(official_kernel.C))
        if hasattr(official_kernel, "P"):
            ours_kernel.P.copy_(c(official_kernel.P))


def copy_block(ours, official) -> None:
    """An S4Block's D and output map into our layer (its Linear, or the kernel-1 Conv1d of a transposed block)."""
    with torch.no_grad():
        ours.D.copy_(official.layer.D)
    _copy_linear(ours.output[0], official.output_linear[0])


def _copy_linear(ours, official) -> None:
    """A Linear of ours from the official's Linear or kernel-1 Conv1d (transposed layers)."""
    with torch.no_grad():
        ours.weight.copy_(official.weight.reshape(ours.weight.shape))
        ours.bias.copy_(official.bias.reshape(ours.bias.shape))


def kernel_norm(K: torch.Tensor) -> float:
    return float(K.detach().norm(dim=-1).mean())


def compare_s4(s4, seed: int, H: int, N: int, L: int) -> None:
    fam = f"S4 (legs, N={N})"
    torch.manual_seed(seed)
    official = _quiet(lambda: s4.S4Block(H, d_state=N, l_max=L, transposed=False)).double()
    K_off = _quiet(lambda: official.layer.kernel(L=L)[0])  # the first call turns C into C̃ for L, as ours stores it
    torch.manual_seed(seed)
    ours = ssmkit.S4(H, N, l_max=L).double()
    B_off = torch.view_as_complex(official.layer.kernel.B.detach())[0, 0]
    B_ours = torch.view_as_complex(ours.kernel.B.detach())[0]
    row(fam, "init: entries of Im B̃ clipped at ±2", int((B_off.imag.abs() >= 2 - 1e-9).sum()),
        int((B_ours.imag.abs() >= 2 - 1e-9).sum()))
    mirrored = B_ours.flip(0).conj()  # the official keeps Im λ < 0, most negative first
    sign = torch.sign((mirrored.conj() * B_off).real)
    row(fam, "init: clipped B̃, max |ours − official| (conjugated, per-mode sign)", "—",
        f"{float((mirrored * sign - B_off).abs().max()):.1e}")
    row(fam, "init: mean ‖K‖ over channels", kernel_norm(K_off), kernel_norm(ours.kernel(L)))
    unclipped = ssmkit.S4(H, N, l_max=L, B_clip=None).double()
    unclipped.load_state_dict({k: v for k, v in ours.state_dict().items() if k != "kernel.B"}, strict=False)
    row(fam, "init: kernel change from the clip, rel.", "—", rel(unclipped.kernel(L).detach(), ours.kernel(L).detach()))
    copy_dplr(ours.kernel, official.layer.kernel)
    copy_block(ours, official)
    agree(fam, "kernel", ours.kernel(L), K_off)
    u = torch.randn(2, L, H, dtype=torch.float64)
    agree(fam, "layer output", ours(u)[0], _quiet(lambda: official(u)[0]))


def compare_s4_fout(s4, seed: int, H: int, N: int, L: int) -> None:
    fam = f"S4 (fout, N={N})"
    torch.manual_seed(seed)
    official = _quiet(lambda: s4.S4Block(H, d_state=N, l_max=L, transposed=False, init="fout")).double()
    K_off = _quiet(lambda: official.layer.kernel(L=L)[0])
    ours = ssmkit.S4(H, N, l_max=L, init="fout").double()
    im_off = official.layer.kernel.A_imag.detach()[0].sort().values
    im_ours = ours.kernel.A_imag.detach()[0].sort().values
    row(fam, "init: largest |Im λ| (π·(N/2 − 1))", float(im_off[-1]), float(im_ours[-1]))
    row(fam, "init: max |Im λ_ours − Im λ_official|", "—", f"{float((im_ours - im_off).abs().max()):.1e}")
    copy_dplr(ours.kernel, official.layer.kernel)
    agree(fam, "kernel", ours.kernel(L), K_off)


def compare_s4d(s4, seed: int, H: int, N: int, L: int) -> None:
    for off_init, our_init in (("diag-lin", "lin"), ("diag-legs", "legs")):
        fam = f"S4D ({our_init}, N={N})"
        torch.manual_seed(seed)
        official = _quiet(lambda: s4.S4Block(H, d_state=N, l_max=L, transposed=False, mode="diag",
                                             init=off_init)).double()
        K_off = _quiet(lambda: official.layer.kernel(L=L)[0])
        torch.manual_seed(seed)
        ours = ssmkit.S4D(H, N, init=our_init).double()
        row(fam, "init: mean ‖K‖ over channels", kernel_norm(K_off), kernel_norm(ours.kernel(L)))
        if our_init == "legs":
            unclipped = ssmkit.S4D(H, N, init="legs", B_clip=None).double()
            unclipped.load_state_dict({k: v for k, v in ours.state_dict().items() if k != "kernel.B"}, strict=False)
            with torch.no_grad():
                for m in (ours, unclipped):
                    m.kernel.log_dt.fill_(math.log(1e-3))
            ratio = unclipped.kernel(L).detach().norm(dim=-1) / ours.kernel(L).detach().norm(dim=-1)
            row(fam, "init: ‖K unclipped‖ / ‖K clipped‖ at Δ = 1e-3, max over channels", "—", float(ratio.max()))
            torch.manual_seed(seed)
            ours = ssmkit.S4D(H, N, init=our_init).double()
        copy_dplr(ours.kernel, official.layer.kernel)
        copy_block(ours, official)
        agree(fam, "kernel", ours.kernel(L), K_off)
        u = torch.randn(2, L, H, dtype=torch.float64)
        agree(fam, "layer output", ours(u)[0], _quiet(lambda: official(u)[0]))


def compare_real_transforms(s4, seed: int, H: int, N: int, L: int) -> None:
    """S4D-Lin under each real_transform the official kernels take: Re λ at init (relu starts at −1/2 − 1e-4 there),
    and the kernel with copied weights after the raw parameter is pushed below 0 (relu's floor of 1e-4 acts)."""
    for transform in ("relu", "softplus", "sigmoid"):
        fam = f"S4D (lin, N={N}, real_transform={transform})"
        torch.manual_seed(seed)
        official = _quiet(lambda: s4.S4Block(H, d_state=N, l_max=L, transposed=False, mode="diag", init="diag-lin",
                                             real_transform=transform)).double()
        ours = ssmkit.S4D(H, N, init="lin", real_transform=transform).double()
        A_off = -s4.param_transform(official.layer.kernel.A_real.detach(), transform)
        row(fam, "init: mean Re λ", float(A_off.mean()), float(ours.kernel.Lambda().real.detach().mean()))
        with torch.no_grad():
            official.layer.kernel.A_real[..., 0] = -0.3  # relu(−0.3) = 0: Re λ = −1e-4 from the floor alone
        copy_dplr(ours.kernel, official.layer.kernel)
        agree(fam, "kernel, one raw parameter below 0", ours.kernel(L),
              _quiet(lambda: official.layer.kernel(L=L)[0]))


def load_sashimi(root: Path):
    """The standalone SaShiMi imports the standalone S4 as models.s4.s4: the checkout's root goes on the path."""
    sys.path.insert(0, str(root))
    return _load("official_sashimi", root / "models/sashimi/sashimi.py")


# -- SaShiMi (state-spaces/s4, models/sashimi/sashimi.py, over the standalone S4 above) --------------------------------
def _copy_residual(ours, official) -> None:
    """One residual block: its LayerNorm, and an S4 layer (kernel before the official's first forward, so that its C
    is still the plain C ours holds with l_max=None) or an FF block."""
    with torch.no_grad():
        ours.norm.weight.copy_(official.norm.weight)
        ours.norm.bias.copy_(official.norm.bias)
    if hasattr(official.layer, "layer"):  # S4Block
        copy_dplr(ours.layer.kernel, official.layer.layer.kernel)
        copy_block(ours.layer, official.layer)
    else:  # FFBlock: Sequential(Sequential(Conv1d, GELU), dropout, Conv1d)
        _copy_linear(ours.layer.net[0], official.layer.ff[0][0])
        _copy_linear(ours.layer.net[-1], official.layer.ff[-1])


def compare_sashimi(sashimi, seed: int, H: int, n_layers: int, L: int) -> None:
    """The official standalone SaShiMi and ours (same widths, S4 with N = 64 as it hard-codes, pool (4, 4)), weights
    copied; the backbone's output (the levels and the final LayerNorm) on the same input."""
    for unet in (False, True):
        fam = f"SaShiMi (d_model {H}, {n_layers} layers, pool (4, 4){', U-Net' if unet else ''})"
        torch.manual_seed(seed)
        official = _quiet(lambda: sashimi.Sashimi(d_model=H, n_layers=n_layers, pool=[4, 4], expand=2, ff=2,
                                                  unet=unet)).double()
        ours = ssmkit.models.Sashimi(H, H, d_model=H, n_layers=n_layers, pool=[4, 4], expand=2, ff=2, unet=unet,
                                     layer="s4", layer_options={"d_state": 64}, norm="layer",
                                     pool_weight_norm=False).double()  # the standalone copy's norm and pooling
        pairs, theirs = [], iter(official.d_layers)  # (our residual block, the official one)
        for level in ours.down:
            for block in level["blocks"]:
                pairs.append((block, next(theirs)))
            _copy_linear(level["pool"].linear, next(theirs).linear)
        pairs += list(zip(ours.center, official.c_layers))
        for level, block in zip(ours.up, official.u_layers):
            _copy_linear(level["pool"].linear, block[0].linear)
            pairs += list(zip(level["blocks"], list(block)[1:]))
        for mine, theirs_block in pairs:
            _copy_residual(mine, theirs_block)
        with torch.no_grad():
            ours.norm.weight.copy_(official.norm.weight)
            ours.norm.bias.copy_(official.norm.bias)
        x = torch.randn(2, L, H, dtype=torch.float64)
        with torch.no_grad():
            y_off = _quiet(lambda: official(x)[0])
            y_ours = ours.norm(ours._levels(x, None, stepping=False)[0])
        agree(fam, "backbone output", y_ours, y_off)


def load_sashimi_parts(root: Path):
    """The training code's norm and pooling modules (src/models/nn/normalization.py, modules/pool.py), which its
    SaShiMi backbone builds (configs/model/sashimi.yaml: transposed, norm layer; pooling with weight_norm)."""
    _official_src(root)
    return (importlib.import_module("src.models.nn.normalization"),
            importlib.import_module("src.models.sequence.modules.pool"))


def compare_sashimi_parts(modules, seed: int, H: int, L: int) -> None:
    """The parts where the training backbone differs from the standalone copy, ours against the official on one
    input, weights nudged off their init and copied: the scalar TransposedLN (one s and m for every channel) and the
    weight-normalized DownPool / UpPool (g, v per output row)."""
    normalization, pool = modules
    torch.manual_seed(seed)
    official = normalization.TransposedLN(H, scalar=True).double()
    ours = ssmkit.layers.norms.ScalarLayerNorm(H).double()
    with torch.no_grad():
        official.s.fill_(1.3), official.m.fill_(-0.2)
        ours.s.copy_(official.s), ours.m.copy_(official.m)
    x = torch.randn(2, L, H, dtype=torch.float64)
    agree("SaShiMi training backbone: scalar TransposedLN", "output",
          ours(x), official(x.transpose(1, 2)).transpose(1, 2))
    for name, theirs, mine, shape in (
            ("DownPool (stride 4, expand 2)", pool.DownPool(H, expand=2, stride=4, transposed=True, weight_norm=True),
             ssmkit.layers.DownPool(H, 2 * H, 4, weight_norm=True), (2, L, H)),
            ("UpPool (stride 4)", pool.UpPool(2 * H, H, 4, transposed=True, weight_norm=True),
             ssmkit.layers.UpPool(2 * H, H, 4, weight_norm=True), (2, L // 4, 2 * H))):
        theirs, mine = theirs.double(), mine.double()
        linear = theirs.linear  # LinearActivation without an activation: the weight-normalized TransposedLinear
        with torch.no_grad():
            linear.weight_g.mul_(1 + 0.3 * torch.rand_like(linear.weight_g))
            weights = mine.linear.parametrizations.weight
            weights.original0.copy_(linear.weight_g.reshape(weights.original0.shape))
            weights.original1.copy_(linear.weight_v)
            mine.linear.bias.copy_(linear.bias)
        u = torch.randn(*shape, dtype=torch.float64)
        y_off = theirs(u.transpose(1, 2))[0].transpose(1, 2)
        agree(f"SaShiMi training backbone: {name}", "output", mine(u)[0], y_off)


# -- S4ND (state-spaces/s4, src/models/sequence/modules/s4nd.py over kernels/ssm.py) ---------------------------------
def _official_src(root: Path) -> None:
    """The checkout's src package without running its __init__ files: src.utils stubbed but for its config module's
    is_list (hydra stubbed, omegaconf's ListConfig a list), src.utils.train a logger; the checkout on sys.path."""
    _forget("src")
    _stub("hydra")
    sys.modules["omegaconf"].ListConfig = list
    for name in ("src", "src.utils"):
        _package(name, root / name.replace(".", "/"))
    utils = sys.modules["src.utils"]
    utils.train = _stub("src.utils.train", get_logger=lambda name=None, level=None: logging.getLogger(name))
    utils.config = _load("src.utils.config", root / "src/utils/config.py")
    utils.is_list = utils.config.is_list
    sys.path.insert(0, str(root))


def load_s4nd(root: Path):
    """The official S4ND module from the checkout's src package (_official_src). Its kernels fall back to the naive
    Cauchy and Vandermonde sums (no CUDA extension, no pykeops)."""
    _official_src(root)
    return importlib.import_module("src.models.sequence.modules.s4nd")


S4ND_MODES = {"s4": "dplr", "s4d": "s4d"}  # our kernel option -> the official kernel registry name


def official_s4nd(nd, kernel: str, H: int, N: int, shape, l_max=True, **options):
    """The official S4ND as its layer config builds it (configs/model/layer/s4nd.yaml: linear false, final_act glu),
    on (B, *grid, H) (transposed=False), in float64. l_max: the grid (its C̃ formed by a first kernel call, as at its
    first forward) or None (C stays the plain C until the first forward)."""
    layer = _quiet(lambda: nd.S4ND(H, d_state=N, l_max=list(shape) if l_max else None, dim=len(shape),
                                   transposed=False, linear=False, final_act="glu", mode=S4ND_MODES[kernel],
                                   init="legs", **options)).double()
    if l_max:
        for k, length in zip(layer.kernel, shape):
            _quiet(lambda: k(L=length))
    return layer


def copy_s4nd(ours, official) -> None:
    """The official S4ND's axis kernels (copy_dplr; its 2·trank·C kernel channels ordered (direction, r, c) as ours),
    D and the Linear of its GLU output map into ours."""
    for mine, theirs in zip(ours.kernels, official.kernel):
        copy_dplr(mine, theirs)
    with torch.no_grad():
        ours.D.copy_(official.D)
    _copy_linear(ours.output[0], official.output_linear[0])


def dense_dplr_kernel(kernel, L: int, rate: float, l_c: int, rate_c: float) -> torch.Tensor:
    """K_j = C_f Ā^j B̄_f, j < L, of our DPLR kernel's system at Δ·rate by the dense recurrence (Cch, H, L), with the
    plain C read from the trained C̃ as C̃_f (I − Ā'^l_c)^{-1}, Ā' at Δ·rate_c: (l_max, 1) gives the exact kernel of
    the trained system, (round(l_max/rate), rate) what the official code's rate computes (C̃ kept as it is)."""
    from ssmkit.dense import dense_discretize, dense_kernel, dplr_dense
    from ssmkit.functional import c_from_ctilde
    with torch.no_grad():
        P, Q = kernel.low_rank()
        A, B, _ = dplr_dense(kernel.Lambda(), P, kernel.cplx("B"), kernel.cplx("C"), Q)
        B = B.expand(A.shape[0], -1)
        dA_c, _ = dense_discretize(A, B, kernel.dt(rate_c), "bilinear")
        C = c_from_ctilde(kernel.cplx("C"), dA_c, l_c)
        dA, dB = dense_discretize(A, B, kernel.dt(rate), "bilinear")
        return dense_kernel(dA, dB, torch.cat([C, C.conj()], -1), L).real


def s4nd_defaults() -> None:
    """Our S4ND's defaults beside the official layer config (configs/model/layer/s4nd.yaml) and, where they differ,
    the official module's own (s4nd.py S4ND.__init__, kernels/ssm.py SSMKernel.__init__)."""
    import inspect
    d = {k: v.default for k, v in inspect.signature(ssmkit.S4ND).parameters.items()}
    disc = inspect.signature(ssmkit.kernels.S4DKernel).parameters["disc"].default
    row("S4ND", "defaults: d_state, init, Δ range, SSM lr (A, B, Δ)", "64, legs, [0.001, 0.1], 0.001",
        f"{d['d_state']}, {d['init']}, [{d['dt_min']}, {d['dt_max']}], {d['ssm_lr']}")
    row("S4ND", "defaults: channels, trank, two-sided, Δ transform, disc (S4D)", "1, 1, true, exp, zoh",
        f"{d['channels']}, {d['trank']}, {str(d['bidirectional']).lower()}, {d['dt_transform']}, {disc}")
    row("S4ND", "defaults: n_ssm (layer config; module code)", "1; None = H", f"{d['n_ssm']} = H")
    row("S4ND", "defaults: activation, output map (layer config; module code: linear=True, neither)", "gelu, glu",
        f"{d['activation']}, {d['output']}")
    row("S4ND", "contractions: kernel channels | trank | D | features", "(2 r c) h, chunk(2) | mean over r | "
        "bh…,ch→bch… | (c h)", "(2 r c) h, view | mean over r | D[c, h]·u | (c h)")


def compare_s4nd(nd, seed: int, H: int, N: int, shape: tuple[int, int], H_init: int = 256) -> None:
    """S4ND with S4 (DPLR) and S4D (diag, ZOH) axis kernels, two-sided, on a 2-D grid: kernel norms at init (width
    H_init: the mean over channels follows the few largest Δ), then with copied weights (the CIFAR config's Δ in
    [0.1, 1] and n_ssm 1, so that the kernels are not flat over the grid) each axis kernel (both halves) and the layer
    output on a random (B, *grid, H) input, also with channels 2 and trank 2, causal, with bandlimit 0.5, l_max None,
    an input larger than l_max, and at rate 2 (the grid halved) and 1/2 (doubled). For S4 at rate ≠ 1, each axis
    kernel against the dense recurrence of the same system (dense_dplr_kernel)."""
    L1, L2 = shape
    cifar = dict(n_ssm=1, dt_min=0.1, dt_max=1.0)
    for kernel in ("s4", "s4d"):
        fam = f"S4ND ({kernel}, {L1}×{L2}, H={H}, N={N})"
        torch.manual_seed(seed)
        official = official_s4nd(nd, kernel, H_init, N, shape)
        torch.manual_seed(seed)
        ours = ssmkit.S4ND(H_init, N, l_max=shape, kernel=kernel).double()
        for a, length in enumerate(shape):
            row(fam, f"init: mean ‖K‖ over channels, axis {a} (H={H_init})",
                kernel_norm(official.kernel[a](L=length)[0]), kernel_norm(ours.kernels[a](length)))
        half, double = (L1 // 2, L2 // 2), (2 * L1, 2 * L2)
        cases = [("", {}, 1.0, shape), (", channels 2, trank 2", dict(channels=2, trank=2), 1.0, shape),
                 (", causal", dict(bidirectional=False), 1.0, shape),
                 (", bandlimit 0.5", dict(bandlimit=0.5), 1.0, shape), (", l_max None", dict(l_max=None), 1.0, shape),
                 (f", {L1 + 4}×{L2 + 4} input", {}, 1.0, (L1 + 4, L2 + 4)),
                 (", rate 2 ({}×{} input)".format(*half), {}, 2.0, half),
                 (", rate 2, bandlimit 0.5", dict(bandlimit=0.5), 2.0, half),
                 (", rate 1/2 ({}×{} input)".format(*double), {}, 0.5, double)]
        for label, options, rate, grid in cases:
            l_max = options.pop("l_max", shape)
            torch.manual_seed(seed)
            official = official_s4nd(nd, kernel, H, N, shape, l_max=l_max is not None, **cifar, **options)
            ours = ssmkit.S4ND(H, N, l_max=l_max, kernel=kernel, **cifar, **options).double()
            copy_s4nd(ours, official)
            if not label:
                for a, length in enumerate(shape):
                    agree(fam, f"kernel, axis {a}", ours.kernels[a](length), official.kernel[a](L=length)[0])
            u = torch.randn(2, *grid, H, dtype=torch.float64)
            agree(fam, "layer output" + label, ours(u, rate=rate)[0], _quiet(lambda: official(u, rate=rate)[0]))
            if kernel != "s4" or rate == 1.0 or options:
                continue
            tag = "rate 2" if rate == 2.0 else "rate 1/2"
            for a, l_max_a in enumerate(shape):
                length = round(l_max_a / rate)
                exact = dense_dplr_kernel(ours.kernels[a], length, rate, l_max_a, 1.0)
                read_as = dense_dplr_kernel(ours.kernels[a], length, rate, length, rate)
                K_off = official.kernel[a](L=length, rate=rate)[0].detach()
                row(fam, f"{tag}, axis {a} kernel vs the exact one (dense recurrence at Δ·rate, plain C)",
                    f"{rel(K_off, exact):.1e}", f"{rel(ours.kernels[a](length, rate).detach(), exact):.1e}")
                row(fam, f"{tag}, axis {a}: official kernel vs C̃ read as the C̃ of length round(l_max/rate) at "
                    "Δ·rate", f"{rel(K_off, read_as):.1e}", "—")


# -- the S4 LRA models (state-spaces/s4: src/models/sequence/backbones, src/tasks, configs/experiment/lra) -----------
def _locate(path: str):
    """hydra.utils.get_method / get_class: the object a dotted path names."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _official_instantiate(root: Path) -> None:
    """What the training code's utils.instantiate builds modules with, over _official_src: src.utils' registry and
    config helpers, and hydra.utils' get_method and get_class (_locate); src.tasks a package without its __init__."""
    sys.modules["hydra"].utils = _stub("hydra.utils", get_method=_locate, get_class=_locate)
    utils = sys.modules["src.utils"]
    for name in ("to_list", "to_dict", "instantiate", "get_class"):
        setattr(utils, name, getattr(utils.config, name))
    utils.registry = _load("src.utils.registry", root / "src/utils/registry.py")
    _package("src.tasks", root / "src/tasks")


def load_s4_backbone(root: Path):
    """The official backbone (backbones/model.py SequenceModel of block.py SequenceResidualBlocks over S4Block), the
    task encoders and decoders (src/tasks) and the trainer's optimizer hooks (src/utils/optim_groups.py), from the
    checkout's src package as load_s4nd sets it up, with what utils.instantiate builds modules with
    (_official_instantiate). The configs are read from the checkout's configs folder (official_lra_config)."""
    load_s4nd(root)
    _official_instantiate(root)
    names = {"backbone": "src.models.sequence.backbones.model", "encoders": "src.tasks.encoders",
             "decoders": "src.tasks.decoders", "optim_groups": "src.utils.optim_groups"}
    return types.SimpleNamespace(root=root, **{k: importlib.import_module(v) for k, v in names.items()})


# our experiment: (the official experiment it mirrors, its dataset's d_output, token inputs, two towers)
S4_LRA = {"lra-listops": ("s4-listops", 10, True, False), "lra-text": ("s4-imdb", 2, True, False),
          "lra-retrieval": ("s4-aan", 2, True, True), "lra-image": ("s4-cifar", 10, False, False),
          "lra-pathfinder": ("s4-pathfinder", 2, False, False)}


def _merged(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` key by key through nested mappings; any other value replaces what was there (a
    number over a mapping too, as OmegaConf merges untyped configs: s4-cifar's layer lr 0.001 over the lr dict)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _official_yaml(root: Path, path: str) -> tuple[list, dict]:
    """(defaults list, the other keys) of one official config file."""
    import yaml
    config = yaml.safe_load((root / "configs" / path).read_text()) or {}
    return config.pop("defaults", []), config


def _official_pipeline(root: Path, name: str) -> dict:
    """A pipeline config over the pipeline its defaults name (listops over imdb, aan over imdb, pathfinder over
    cifar); the groups it selects (/dataset, /trainer, ...) are not read."""
    defaults, config = _official_yaml(root, f"pipeline/{name}.yaml")
    base = {}
    for entry in defaults:
        if isinstance(entry, str) and not entry.startswith("/") and entry != "_self_":
            base = _merged(base, _official_pipeline(root, entry))
    return _merged(base, config)


def official_lra_config(root: Path, experiment: str) -> dict:
    """configs/experiment/lra/<experiment>.yaml as Hydra composes the parts a model is built from: the pipeline's
    encoder and decoder, the model (model/base.yaml, model/s4.yaml, its layer model/layer/s4.yaml), the experiment's
    own keys last; the layer's tie_dropout interpolation resolved (the model's). The layer's l_max (the dataset's
    length there) is set by the caller."""
    defaults, experiment_keys = _official_yaml(root, f"experiment/lra/{experiment}.yaml")
    pipeline = next(e["/pipeline"] for e in defaults if isinstance(e, dict) and "/pipeline" in e)
    model = _merged(_official_yaml(root, "model/base.yaml")[1], _official_yaml(root, "model/s4.yaml")[1])
    model["layer"] = _official_yaml(root, "model/layer/s4.yaml")[1]
    config = _merged(_merged(_official_pipeline(root, pipeline), {"model": model}), experiment_keys)
    config["model"]["layer"]["tie_dropout"] = config["model"]["tie_dropout"]
    return config


def official_lra_model(m, config: dict, n_tokens: int | None, d_output: int):
    """(encoder, backbone, decoder) of a composed config as train.py's setup builds them: the backbone from the model
    config (less _name_ and its encoder/decoder keys, which train.py pops), the encoder and decoder through
    src/tasks' instantiate with the dataset's n_tokens, d_output and l_output 0 (classification), float64."""
    import copy
    dataset = types.SimpleNamespace(n_tokens=n_tokens, d_input=1, d_output=d_output, l_output=0)
    options = {k: v for k, v in copy.deepcopy(config["model"]).items() if k not in ("_name_", "encoder", "decoder")}
    backbone = _quiet(lambda: m.backbone.SequenceModel(**options))
    encoder = m.encoders.instantiate(copy.deepcopy(config["encoder"]), dataset=dataset, model=backbone)
    decoder = m.decoders.instantiate(copy.deepcopy(config["decoder"]), model=backbone, dataset=dataset)
    return encoder.double(), backbone.double(), decoder.double()


def ours_lra_model(name: str, overrides: list[str], n_tokens: int | None, d_output: int, L: int, pair: bool):
    """(model, config) of our experiment with ``overrides``, as the trainer builds it (train/build.py build_model)
    over a dataset with that experiment's attributes: token ids padded with 0, or one value per position."""
    from ssmkit.train import load_experiment, make_config
    from ssmkit.train.build import build_model
    config = make_config(overrides, load_experiment(name), source=name)
    dataset = types.SimpleNamespace(d_input=n_tokens or 1, n_classes=d_output, l_max=L, vocab_size=n_tokens,
                                    padding_idx=0 if n_tokens else None, pair=pair, task="classify")
    return build_model(config, dataset).double(), config


# our parameter (or BatchNorm running statistic) -> the official one it is copied from
LRA_NAMES = [(r"encoder\.(\w+)", r"encoder.0.\1"),
             (r"layers\.(\d+)\.kernel\.(\w+)", r"backbone.layers.\1.layer.layer.kernel.\2"),
             (r"layers\.(\d+)\.D", r"backbone.layers.\1.layer.layer.D"),
             (r"layers\.(\d+)\.output\.0\.(\w+)", r"backbone.layers.\1.layer.output_linear.0.\2"),
             (r"norms\.(\d+)\.norm\.(\w+)", r"backbone.layers.\1.norm.norm.\2"),
             (r"final_norm\.norm\.(\w+)", r"backbone.norm.norm.\1"),
             (r"decoder\.(weight|bias)", r"decoder.0.output_transform.\1"),
             (r"decoder\.(\d)\.(\w+)", r"decoder.0.retrieval.classifier.\1.\2")]

RUNNING = ("running_mean", "running_var")


def lra_pairs(ours, encoder, backbone, decoder, names=LRA_NAMES) -> list[tuple[str, torch.Tensor, str, torch.Tensor]]:
    """(our name, ours, official name, official) for every parameter and BatchNorm running statistic, matched by
    ``names`` (LRA_NAMES, DSS_LRA_NAMES; several of ours may read one official tensor); a tensor on either side
    without a partner is an error, so that every weight is copied."""
    import re
    theirs = {}
    for prefix, module in (("encoder", encoder), ("backbone", backbone), ("decoder", decoder)):
        theirs.update({f"{prefix}.{k}": v for k, v in module.named_parameters()})
        theirs.update({f"{prefix}.{k}": v for k, v in module.named_buffers() if k.endswith(RUNNING)})
    mine = {**dict(ours.named_parameters()), **{k: v for k, v in ours.named_buffers() if k.endswith(RUNNING)}}
    pairs = []
    for name, tensor in mine.items():
        target = next((re.sub(f"^{a}$", b, name) for a, b in names if re.fullmatch(a, name)), None)
        if target not in theirs:
            raise AssertionError(f"{name}: no official partner ({target})")
        pairs.append((name, tensor, target, theirs[target]))
    unpaired = sorted(set(theirs) - {target for _, _, target, _ in pairs})
    if unpaired:
        raise AssertionError(f"official tensors without a partner in ours: {unpaired}")
    return pairs


def _s4_kernel_value(name: str, value: torch.Tensor) -> torch.Tensor:
    """An official S4 kernel tensor as ours keeps it: B, C and P conjugated (as copy_dplr: ours keeps Im λ > 0)."""
    if name in ("B", "C", "P"):
        return torch.view_as_real(torch.view_as_complex(value.contiguous()).conj().resolve_conj())
    return value


def copy_lra(pairs, d_model: int, kernel=_s4_kernel_value) -> None:
    """Each official tensor into its partner: a kernel's through ``kernel`` (its name there, the tensor; S4's B, C
    and P conjugated by default, _dss_kernel_value), Δ's (H, 1) as our (H,), and the two-tower head's first Linear with
    its input blocks reordered from the official [a, b, a − b, a ⊙ b] (src/tasks/decoders.py RetrievalHead) to ours
    [a, b, a ⊙ b, a − b]."""
    with torch.no_grad():
        for name, tensor, _, value in pairs:
            value = value.detach()
            if ".kernel." in name:
                value = kernel(name.rsplit(".", 1)[1], value)
            elif name == "decoder.0.weight":
                a, b, difference, product = value.split(d_model, dim=1)
                value = torch.cat([a, b, product, difference], dim=1)
            tensor.copy_(value.reshape(tensor.shape))


def _nudge_batchnorms(module, seed: int) -> None:
    """Move every BatchNorm's weight, bias and running statistics off their start (1, 0, 0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm1d)):
            H = bn.num_features
            bn.weight.add_(0.2 * torch.randn(H, generator=gen, dtype=torch.float64))
            bn.bias.add_(0.2 * torch.randn(H, generator=gen, dtype=torch.float64))
            bn.running_mean.copy_(0.3 * torch.randn(H, generator=gen, dtype=torch.float64))
            bn.running_var.copy_(torch.rand(H, generator=gen, dtype=torch.float64) * 1.5 + 0.5)


def official_lra_logits(encoder, backbone, decoder, x: torch.Tensor, lengths, positional: bool = False) -> torch.Tensor:
    """train.py's forward: x, w = encoder(x, **z); x, state = backbone(x, **w); decoder(x, state=state, **z), where
    z holds the collate's lengths (when the loader gives them); positional: the older trainer of the DSS fork, which
    passes the batch's extra entries by position (encoder(x, *z), backbone(x, *w), decoder(x, state, *z))."""
    if positional:
        z = () if lengths is None else (lengths,)
        h, *w = encoder(x, *z)
        h, state = backbone(h, *w)
        return decoder(h, state, *z)[0]
    z = {} if lengths is None else {"lengths": lengths}
    h, w = encoder(x, **z)
    h, state = backbone(h, **w)
    return decoder(h, state=state, **z)[0]


def _lra_batch(seed: int, tokens: bool, pair: bool, B: int, L: int, vocab: int):
    """(x, lengths) for ours and (x, lengths) for the official model: token ids suffix-padded with 0 (lengths L, 30, 7;
    per tower for a pair, which the official AAN collate stacks as (2B, L), first towers first), or values (B, L, 1)
    without lengths (CIFAR, Pathfinder)."""
    gen = torch.Generator().manual_seed(seed)
    if not tokens:
        x = torch.randn(B, L, 1, dtype=torch.float64, generator=gen)
        return (x, None), (x, None)
    lengths = torch.tensor([[L, 20], [33, L], [5, 12]] if pair else [L, 30, 7])[:B]
    x = torch.randint(1, vocab, (*lengths.shape, L), generator=gen)
    x[torch.arange(L) >= lengths[..., None]] = 0
    if pair:
        return (x, lengths), (x.transpose(0, 1).flatten(0, 1), lengths.t().flatten())
    return (x, lengths), (x, lengths)


def _trimmed_as_collate(name: str, x, x_off, lengths, L: int, L_pad: int):
    """(ours' token batch padded to L_pad and cut by the trainer's trimmed, a line saying so), checked against the
    length the official collate pads to."""
    from ssmkit.train.trainer import trimmed
    x = trimmed(torch.nn.functional.pad(x, (0, L_pad - L)), [lengths])
    if x.shape[-1] != x_off.shape[-1]:
        raise AssertionError(f"{name}: trimmed to {x.shape[-1]}, the official collate pads to {x_off.shape[-1]}")
    return x, f"lengths {lengths.tolist()} padded to {L_pad}, trimmed to {x.shape[-1]}"


def _trim_as_official(name: str, our_config, tokens: bool, x, x_off, lengths, L: int, L_pad: int):
    """_trimmed_as_collate for a token task, whose experiment must read a batch as the official S4 trainer does
    (mask_padding 'layers'; with trim_padding false, as lra-listops and lra-text train for their CUDA graphs, its
    BatchNorms read the positions up to the longest sequence, the trimmed batch's outputs, and it evaluates on
    trimmed batches); values (CIFAR, Pathfinder) as they are."""
    if not tokens:
        return x, "no padding"
    if our_config.mask_padding != "layers":
        raise AssertionError(f"{name}: expected mask_padding 'layers', got {our_config.mask_padding!r}")
    return _trimmed_as_collate(name, x, x_off, lengths, L, L_pad)


def _lra_settings(config: dict) -> str:
    """One line of an official composed config: what sets the model's function, init and SSM learning rates."""
    model, layer, decoder = config["model"], config["model"]["layer"], config["decoder"]
    dt_lr = layer["lr"].get("dt") if isinstance(layer["lr"], dict) else layer["lr"]
    head = {"sequence": "linear", "retrieval": "two-tower"}[decoder["_name_"]]
    return _settings_line(model["d_model"], model["n_layers"], model["prenorm"], model["norm"], model["dropout"],
                          model["tie_dropout"], layer["init"], layer["d_state"], layer["n_ssm"], layer["bidirectional"],
                          (layer["dt_min"], layer["dt_max"]), layer["dt_transform"], dt_lr, layer["activation"],
                          layer["final_act"], config["encoder"], head, {"pool": "mean"}.get(decoder["mode"]),
                          decoder.get("use_lengths", False))


def _our_settings(config, tokens: bool) -> str:
    """The same line for our experiment config (the S4 layer's defaults where layer_options leave a key out); the
    pooling reads the lengths wherever the dataset pads (token datasets)."""
    import inspect
    o = {**{k: v.default for k, v in inspect.signature(ssmkit.S4).parameters.items()}, **config.layer_options}
    dt_lr = {"ssm": config.ssm_lr}.get(o["dt_lr"], o["dt_lr"])
    return _settings_line(config.d_model, config.n_layers, config.prenorm, config.norm, config.dropout,
                          config.tie_dropout, o["init"], config.d_state, o["n_ssm"], o["bidirectional"],
                          (o["dt_min"], o["dt_max"]), o["dt_transform"], dt_lr, o["activation"], o["output"],
                          "embedding" if tokens else "linear", "two-tower" if config.dataset == "lra-retrieval"
                          else "linear", config.pool, tokens)


def _settings_line(H, n_layers, prenorm, norm, dropout, tied, init, N, n_ssm, bidirectional, dt_range, dt_transform,
                   dt_lr, activation, output, encoder, head, pool, lengths) -> str:
    return (f"H {H}, {n_layers} layers, {'pre' if prenorm else 'post'}norm {norm}, dropout {dropout} "
            f"({'tied' if tied else 'untied'}); S4 {init}, N {N}, n_ssm {'H' if n_ssm is None else n_ssm}, "
            f"{'bidirectional' if bidirectional else 'causal'}, Δ [{dt_range[0]}, {dt_range[1]}] {dt_transform}, "
            f"Δ lr {'the model’s' if dt_lr is None else dt_lr}, {activation} → {output}; {encoder} encoder, {head} "
            f"head, pool {pool}{' over the lengths' if lengths else ''}")


def _optimizer_settings(config: dict, pairs, ours, our_config) -> tuple[str, str]:
    """(official, ours): the (lr, weight decay) of each parameter where the two trainers differ, by our name with the
    layer index as *, or "the same". Official: train.py configure_optimizers (the optimizer config's lr and weight
    decay, updated by a parameter's _optim: the kernel's lr and wd dicts, and in the S4 trainer the weight decay 0 that
    add_optimizer_hooks gives its backbone's biases, norms and embeddings, set by the caller); ours:
    train/optim.py param_groups."""
    import re
    from ssmkit.train.optim import param_groups
    lr, wd = config["optimizer"]["lr"], config["optimizer"]["weight_decay"]
    groups = param_groups(ours, our_config.lr, our_config.weight_decay, our_config.weight_decay_all,
                          our_config.weight_decay_heads)
    mine = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    differ = {}
    for name, tensor, _, value in pairs:
        if not name.endswith(RUNNING):
            hp = {"lr": lr, "weight_decay": wd, **getattr(value, "_optim", {})}
            theirs = (hp["lr"], hp["weight_decay"])
            if theirs != mine[id(tensor)]:
                differ[re.sub(r"^(layers|norms)\.\d+\.", r"\1.*.", name)] = (theirs, mine[id(tensor)])
    if not differ:
        return "the same", "the same"
    return tuple("; ".join(f"{role}: lr {v[i][0]:g}, wd {v[i][1]:g}" for role, v in sorted(differ.items()))
                 for i in (0, 1))


def compare_backbone(m, seed: int, H: int = 16, n_layers: int = 2, N: int = 8, L: int = 48, vocab: int = 20,
                     B: int = 3, L_pad: int = 64) -> None:
    """Our S4 LRA experiments (S4_LRA) beside the official models of the configs they mirror, built both ways at a
    small size (d_model H, n_layers, d_state N, l_max L, dropout 0; everything else as each config composes,
    official_lra_config, and as build_model builds ours): a settings row of each at full size, every weight copied
    (lra_pairs, copy_lra) with the official BatchNorms moved off their start, and the logits on a batch of B (token
    ids of lengths L, 30, 7, padded to L_pad and cut by trimmed for ours as our trainer does, padded to the longest
    for the official model as its collates do; or values without padding) in evaluation (running statistics) and in
    training mode (batch statistics over every position of the batch in both: the padded experiments set
    mask_padding 'layers' and trim_padding; once more with mask_padding true, whose statistics take the real positions
    only); then the optimizer settings of each parameter (_optimizer_settings)."""
    for name, (experiment, d_output, tokens, pair) in S4_LRA.items():
        config = official_lra_config(m.root, experiment)
        fam = f"S4 LRA {name} ~ official {experiment}"
        row(fam, "settings (full size; composed config | our experiment)", _lra_settings(config),
            _our_settings(ours_lra_model(name, [], None, d_output, L, pair)[1], tokens))
        fam += f" (H={H}, {n_layers} layers, N={N}, L={L})"
        small = {"model": {"d_model": H, "n_layers": n_layers, "dropout": 0.0, "layer": {"d_state": N, "l_max": L}}}
        torch.manual_seed(seed)
        encoder, backbone, decoder = official_lra_model(m, _merged(config, small), vocab if tokens else None,
                                                        d_output)
        ours, our_config = ours_lra_model(name, [f"d_model={H}", f"n_layers={n_layers}", f"d_state={N}",
                                                 "dropout=0.0"], vocab if tokens else None, d_output, L, pair)
        _nudge_batchnorms(backbone, seed)
        for block in backbone.layers:  # the first kernel call turns C into the C̃ of l_max, as ours stores it
            _quiet(lambda: block.layer.layer.kernel(L=L))
        pairs = lra_pairs(ours, encoder, backbone, decoder)
        copy_lra(pairs, H)
        (x, lengths), (x_off, lengths_off) = _lra_batch(seed, tokens, pair, B, L, vocab)
        modes = [("eval", False), ("training mode (batch statistics)", True)]
        x, padding = _trim_as_official(name, our_config, tokens, x, x_off, lengths, L, L_pad)
        if tokens:
            modes.append(("training mode, ours with mask_padding true (statistics over the real positions)", True))
        for k, (label, training) in enumerate(modes):
            if k == 2:
                ours.mask_padding = True
            for module in (encoder, backbone, decoder, ours):
                module.train(training)
            with torch.no_grad():
                y_off = _quiet(lambda: official_lra_logits(encoder, backbone, decoder, x_off, lengths_off))
                y = ours(x, lengths)
            agree(fam, f"logits, {label}, {padding}", y, y_off)
        m.optim_groups.add_optimizer_hooks(backbone, bias_weight_decay=False, normalization_weight_decay=False)
        row(fam, "optimizer (lr, weight decay) where the trainers differ",
            *_optimizer_settings(config, pairs, ours, our_config))


def compare_backbone_init(m, seed: int, n_layers: int = 1, N: int = 4, L: int = 48, vocab: int = 20) -> None:
    """The ends and norms of the LRA models at init, seeds equal, at each config's own width: mean and std of each
    parameter outside the SSM kernels (compared in the S4 rows), over the layers, for ListOps (token embedding: its
    rows other than the padding id 0, and that row's norm), Retrieval (the two-tower head) and Image (the Linear
    encoder)."""
    import re
    for name, roles in (("lra-listops", None), ("lra-retrieval", r"decoder\..*"), ("lra-image", r"encoder\..*")):
        experiment, d_output, tokens, pair = S4_LRA[name]
        config = official_lra_config(m.root, experiment)
        H = config["model"]["d_model"]
        fam = f"S4 LRA {name} ~ official {experiment} (H={H}, {n_layers} layer{'s' * (n_layers > 1)}, N={N})"
        small = {"model": {"n_layers": n_layers, "dropout": 0.0, "layer": {"d_state": N, "l_max": L}}}
        torch.manual_seed(seed)
        official = official_lra_model(m, _merged(config, small), vocab if tokens else None, d_output)
        torch.manual_seed(seed)
        ours, _ = ours_lra_model(name, [f"n_layers={n_layers}", f"d_state={N}", "dropout=0.0"],
                                 vocab if tokens else None, d_output, L, pair)
        stats: dict[str, tuple[list, list]] = {}  # role: (official tensors, ours)
        for mine, tensor, _, value in lra_pairs(ours, *official):
            role = re.sub(r"^(layers|norms)\.\d+\.", r"\1.*.", mine)
            if ".kernel." in mine or mine.endswith(RUNNING) or (roles and not re.fullmatch(roles, role)):
                continue
            value, tensor = value.detach(), tensor.detach()
            if tokens and role == "encoder.weight":  # rows other than the padding id's, and that row apart
                stats["encoder.weight, row 0 (padding id): norm"] = ([value[0].norm()], [tensor[0].norm()])
                value, tensor = value[1:], tensor[1:]
            stats.setdefault(role, ([], []))
            stats[role][0].append(value.flatten())
            stats[role][1].append(tensor.flatten())
        for role, tensors in stats.items():
            official_t, ours_t = (torch.cat([t.reshape(-1) for t in side]) for side in tensors)
            if official_t.numel() == 1:
                row(fam, f"init: {role}", float(official_t), float(ours_t))
            else:
                row(fam, f"init: {role}, mean ± std", f"{float(official_t.mean()):.3g} ± {float(official_t.std()):.3g}",
                    f"{float(ours_t.mean()):.3g} ± {float(ours_t.std()):.3g}")


# -- DSS and DLR (ag1988/dss, ag1988/dlr: src/models/sequence/ss/standalone/dss.py) ----------------------------------
def compare_dss(dss, seed: int, H: int, N: int, L: int) -> None:
    for version in ("softmax", "exp"):
        fam = f"DSS ({version}, N={N})"
        torch.manual_seed(seed)
        official = _quiet(lambda: dss.DSSKernel(H, N, version=version)).double()
        torch.manual_seed(seed)
        ours = ssmkit.kernels.DSSKernel(H, N, variant=version).double()
        Lam = official._Lambda().detach()
        if version == "softmax":
            im = ours.Lambda().detach()[0].imag.sort().values
            row(fam, "init: max |Im λ_ours − Im λ_official| (N modes of the size-2N skew HiPPO)", "—",
                f"{float((im - Lam.imag.sort().values).abs().max()):.1e}")
            row(fam, "init: E|w|²", float(torch.view_as_complex(official.W.detach()).abs().square().mean()),
                float(ours.cplx("C").detach().abs().square().mean()))
            row(fam, "init: Λ parameters (shared by channels)", official.Lambda.numel() // 2, ours.A_imag.numel())
        with torch.no_grad():
            ours.log_dt.copy_(official.log_dt)
            ours.A_real.copy_((-Lam.real if version == "softmax" else official.Lambda_log_neg_re)[None])
            ours.A_imag.copy_(Lam.imag[None])
            ours.C.copy_(official.W)
        agree(fam, "kernel", ours(L), _quiet(lambda: official(L)[0]))


def load_dss_backbone(root: Path):
    """The DSS fork's model as its train.py builds it: src/models/sequence/model.py SequenceModel of block.py
    SequenceResidualBlocks over the standalone DSS layer (src/utils/registry.py's "dss"), src/tasks' encoders and
    decoders, from the checkout's src package (_official_src, _official_instantiate); ``dss`` the standalone module
    (compare_dss). The configs are read from the checkout's configs folder (official_dss_config)."""
    _official_src(root)
    _official_instantiate(root)
    names = {"backbone": "src.models.sequence.model", "encoders": "src.tasks.encoders",
             "decoders": "src.tasks.decoders", "dss": "src.models.sequence.ss.standalone.dss"}
    return types.SimpleNamespace(root=root, **{k: importlib.import_module(v) for k, v in names.items()})


# our experiment: (the official experiment it mirrors with model=dss, its dataset's d_output, two towers, the
# overrides of its command line in the README's LRA list)
DSS_LRA = {"dss-lra-listops": ("s4-lra-listops", 10, False, {"model": {"layer": {"lr": {"log_dt": 0.02}}}}),
           "dss-lra-text": ("s4-lra-imdb", 2, False, {"model": {"layer": {"lr": {"log_dt": 0.02}}}}),
           "dss-lra-retrieval": ("s4-lra-aan", 2, True, {})}

# our parameter (or BatchNorm running statistic) -> the official one it is copied from (A_real and A_imag both from Λ)
DSS_LRA_NAMES = [(r"encoder\.(\w+)", r"encoder.\1"),  # its TupleSequential of one module is that module
                 (r"layers\.(\d+)\.kernel\.(A_real|A_imag)", r"backbone.layers.\1.layer.kernel.Lambda"),
                 (r"layers\.(\d+)\.kernel\.C", r"backbone.layers.\1.layer.kernel.W"),
                 (r"layers\.(\d+)\.kernel\.log_dt", r"backbone.layers.\1.layer.kernel.log_dt"),
                 (r"layers\.(\d+)\.D", r"backbone.layers.\1.layer.D"),
                 (r"layers\.(\d+)\.output\.(\w+)", r"backbone.layers.\1.layer.output_linear.\2"),
                 *LRA_NAMES[4:6],
                 (r"decoder\.(weight|bias)", r"decoder.output_transform.\1"),
                 (r"decoder\.(\d)\.(\w+)", r"decoder.retrieval.classifier.\1.\2")]


def _dss_kernel_value(name: str, value: torch.Tensor) -> torch.Tensor:
    """An official DSS-softmax kernel tensor as ours keeps it: Λ (N, 2) as A_real = −Re Λ and A_imag = Im Λ (shared
    by the channels, as there); W as our C and the (H, 2) log Δ as they are."""
    return {"A_real": lambda: -value[:, 0], "A_imag": lambda: value[:, 1]}.get(name, lambda: value)()


def official_dss_config(root: Path, experiment: str, overrides: dict) -> dict:
    """configs/experiment/<experiment>.yaml with model=dss as Hydra composes the parts a model and its optimizer are
    built from: the pipeline's encoder and decoder, the optimizer group it selects (/optimizer: adamw), the model
    (model/dss.yaml, in place of the experiment's /model: s4, with its layer model/layer/dss.yaml), the experiment's
    own keys, then the command line's ``overrides``; the layer's dropout interpolation resolved (the model's). The
    layer's l_max (the dataset's length there, unused by the DSS layer) is set by the caller."""
    defaults, experiment_keys = _official_yaml(root, f"experiment/{experiment}.yaml")
    pipeline = next(e["/pipeline"] for e in defaults if isinstance(e, dict) and "/pipeline" in e)
    optimizer = _official_yaml(root, "pipeline/imdb.yaml")[0]  # every LRA pipeline selects imdb's groups
    optimizer = next(e["/optimizer"] for e in optimizer if isinstance(e, dict) and "/optimizer" in e)
    model = _official_yaml(root, "model/dss.yaml")[1]
    model["layer"] = _official_yaml(root, "model/layer/dss.yaml")[1]
    optimizer = _official_yaml(root, f"optimizer/{optimizer}.yaml")[1]
    config = _merged(_official_pipeline(root, pipeline), {"optimizer": optimizer, "model": model})
    config = _merged(_merged(config, experiment_keys), overrides)
    config["model"]["layer"]["dropout"] = config["model"]["dropout"]
    return config


@contextlib.contextmanager
def _float64_casts(on: bool):
    """While on, the official code's .float() casts keep float64: the DSS kernel returns the float64 real part where
    its forward ends in .float() of a complex tensor (dss.py DSSKernel.forward); Mega's EMA takes its FFTs and fairseq's
    LayerNorm its statistics in the input's dtype (exponential_moving_average.py, layer_norm.py): the rest of the
    model compared without float32 rounding (.real of a real tensor is the tensor)."""
    if not on:
        yield
        return
    with mock.patch.object(torch.Tensor, "float", lambda t: t.real):
        yield


def compare_dss_lra(m, seed: int, H: int = 16, n_layers: int = 2, N: int = 8, L: int = 48, vocab: int = 20,
                    B: int = 3, L_pad: int = 64) -> None:
    """Our padded-data DSS LRA experiments (DSS_LRA: mask_padding false, trim_padding true, layer_options.l_max null)
    beside the DSS fork's models of the configs they mirror (official_dss_config), built at a small size (d_model H,
    n_layers, d_state N, dropout 0; everything else as each config composes, and as build_model builds ours), every
    weight copied (lra_pairs with DSS_LRA_NAMES, copy_lra with _dss_kernel_value) with the BatchNorms moved off their
    start. The batch: B token sequences (per tower for Retrieval) of lengths L, 30, 7 (towers of one padded length,
    as its AAN collate needs), padded with id 0 to L_pad for ours and cut by trimmed as our trainer does
    (trim_padding), and padded to the longest, L, for the official model as its collates do; the official encoder
    drops the lengths (train.py forward), so its blocks, BatchNorm and DSS-softmax normalization read the padding, and
    only its decoder takes them. Rows: the logits in evaluation and in training mode (batch statistics over all
    positions in both), each as the official code runs and with its kernel kept in float64 (_float64_casts);
    the (lr, weight decay) of every parameter (_optimizer_settings: train.py configure_optimizers against our
    param_groups with the experiment's weight_decay_all, ssm_lr and dt_lr)."""
    for name, (experiment, d_output, pair, overrides) in DSS_LRA.items():
        config = official_dss_config(m.root, experiment, overrides)
        fam = f"DSS LRA {name} ~ official {experiment}, model=dss (H={H}, {n_layers} layers, N={N})"
        small = {"model": {"d_model": H, "n_layers": n_layers, "dropout": 0.0,
                           "layer": {"d_state": N, "l_max": L, "dropout": 0.0}}}
        torch.manual_seed(seed)
        encoder, backbone, decoder = official_lra_model(m, _merged(config, small), vocab, d_output)
        ours, our_config = ours_lra_model(name, [f"d_model={H}", f"n_layers={n_layers}", f"d_state={N}",
                                                 "dropout=0.0"], vocab, d_output, L_pad, pair)
        if our_config.mask_padding or not our_config.trim_padding or our_config.layer_options.get("l_max", 0):
            raise AssertionError(f"{name}: expected mask_padding false, trim_padding true, layer_options.l_max null")
        _nudge_batchnorms(backbone, seed)
        pairs = lra_pairs(ours, encoder, backbone, decoder, DSS_LRA_NAMES)
        copy_lra(pairs, H, _dss_kernel_value)
        (x, lengths), (x_off, lengths_off) = _lra_batch(seed, True, pair, B, L, vocab)
        x, padding = _trimmed_as_collate(name, x, x_off, lengths, L, L_pad)
        for label, training in (("eval", False), ("training mode (batch statistics)", True)):
            for exact in (False, True):
                for module in (encoder, backbone, decoder, ours):
                    module.train(training)
                with torch.no_grad(), _float64_casts(exact):
                    y_off = _quiet(lambda: official_lra_logits(encoder, backbone, decoder, x_off, lengths_off, True))
                    y = ours(x, lengths)
                kernel = "its kernel in float64" if exact else "as it runs (its kernel cast to float32)"
                agree(fam, f"logits, {label}, {padding}; official {kernel}", y, y_off)
        row(fam, "optimizer (lr, weight decay) where the trainers differ",
            *_optimizer_settings(config, pairs, ours, our_config))


def compare_dlr(dlr, seed: int, H: int, N: int, L: int) -> None:
    fam = f"DLR (N={N})"
    lr = _AttrDict(Lambda=1e-4, Lambda_re=None, W=1e-4)
    torch.manual_seed(seed)
    official = _quiet(lambda: dlr.DLRKernel(H, N, lr=lr, pykeops=False)).double()
    torch.manual_seed(seed)
    ours = ssmkit.kernels.DLRKernel(H, N).double()
    row(fam, "init: θ spacing (2π/N)", float(official.Lambda_im.detach()[1] - official.Lambda_im.detach()[0]),
        float(ours.theta[0, 1] - ours.theta[0, 0]))
    row(fam, "init: mean log(2 r²) = mean log Δ", float((2 * official.Lambda_log_neg_re.detach() ** 2).log().mean()),
        float((2 * ours.r.detach() ** 2).log().mean()))
    row(fam, "init: E|W|² · N²", float(torch.view_as_complex(official.W.detach()).abs().square().mean()) * N ** 2,
        float(ours.cplx("C").detach().abs().square().mean()) * N ** 2)
    with torch.no_grad():
        ours.r.copy_(official.Lambda_log_neg_re[None])
        ours.theta.copy_(official.Lambda_im[None])
        ours.C.copy_(official.W)
    agree(fam, "kernel", ours(L), _quiet(lambda: official(L)[0]))


# -- SGConv (ctlllll/SGConv, gconv_standalone.py) ----------------------------------------------------------------------
def copy_sgconv(ours, official) -> None:
    """The official GConv's sub-kernels, D and output Linear into ours, our normalizer taken from the copied pieces."""
    with torch.no_grad():
        for p, q in zip(ours.kernel.pieces, official.kernel_list):
            p.copy_(q)
        if "learnable" in official.mode:  # the power-law exponents of its 'learnable' modes
            ours.kernel.power.copy_(official.decay)
        ours.kernel.norm.copy_(ours.kernel.full_kernel().norm(dim=-1, keepdim=True))
        ours.D.copy_(official.D)
    _copy_linear(ours.output, official.output_linear)


def compare_sgconv(sg, seed: int, H: int, L: int, d: int) -> None:
    fam = f"SGConv (L={L}, d={d})"
    torch.manual_seed(seed)
    official = _quiet(lambda: sg.GConv(H, l_max=L, kernel_dim=d, transposed=False)).double()
    u = torch.randn(2, L, H, dtype=torch.float64)
    y_off = _quiet(lambda: official(u)[0])  # sets its kernel_norm from the initial kernel
    torch.manual_seed(seed)
    ours = ssmkit.SGConv(H, L, kernel_dim=d).double()
    scale = 2.0 ** (len(official.kernel_list) - 1)  # the official weighs piece i by 2^(S−1−i), ours by 2^(−i)
    row(fam, "init: normalizer ν / 2^(S−1), mean over channels", float(official.kernel_norm.mean()) / scale,
        float(ours.kernel.norm.mean()))
    piece0 = official.kernel_list[0].detach().norm(dim=-1, keepdim=True) * scale
    ratio = piece0 / official.kernel_norm
    row(fam, "init: the old normalizer ‖piece₀‖ / ν (min–max)", "—", f"{float(ratio.min()):.2f}–{float(ratio.max()):.2f}")
    copy_sgconv(ours, official)
    agree(fam, "normalizer ν", ours.kernel.norm * scale, official.kernel_norm)
    agree(fam, "layer output", ours(u)[0], y_off)
    torch.manual_seed(seed)  # multipliers spread over the channels: decay_min 2, decay_max 4 there, α from 1/2 to 1/4
    official = _quiet(lambda: sg.GConv(H, l_max=L, kernel_dim=d, transposed=False, decay_min=2, decay_max=4)).double()
    y_off = _quiet(lambda: official(u)[0])
    ours = ssmkit.SGConv(H, L, kernel_dim=d, decay=[0.5, 0.25]).double()
    copy_sgconv(ours, official)
    agree(fam, "layer output, decay per channel (decay_min 2, decay_max 4 there; its multipliers float32)", ours(u)[0],
          y_off)
    # its other kernel modes, each beside ours with the options that name it (copied sub-kernels and exponents)
    modes = [("sum_randn", {}, dict(combine="sum")), ("cat_randn_nearest", {}, dict(interpolation="nearest")),
             ("sum_cos_nearest", {}, dict(combine="sum", init="cos", interpolation="nearest")),
             ("cat_randn", {"init_scale": 1}, dict(init_scale=1)), ("sum_randn", {"init_scale": 2},
                                                                  dict(combine="sum", init_scale=2)),
             ("cat_randn_learnable", {"decay_min": 1, "decay_max": 3}, dict(decay=None, power_decay=[1.0, 3.0])),
             ("cat_randn_learnable_fixed", {}, dict(decay=None, power_decay=2.0, train_power=False))]
    for mode, official_args, our_args in modes:
        torch.manual_seed(seed)
        official = _quiet(lambda: sg.GConv(H, l_max=L, kernel_dim=d, transposed=False, mode=mode,
                                           **official_args)).double()
        y_off = _quiet(lambda: official(u)[0])
        ours = ssmkit.SGConv(H, L, kernel_dim=d, **our_args).double()
        copy_sgconv(ours, official)
        named = f"mode {mode}" + "".join(f", {k} {v}" for k, v in official_args.items()) + " ~ ours " + ", ".join(
            f"{k}={v}" for k, v in our_args.items())
        row(fam, f"{named}: scales", len(official.kernel_list), ours.kernel.n_scales)
        agree(fam, f"layer output, {named}", ours(u)[0], y_off)


# -- Mega (facebookresearch/mega, fairseq/modules) ---------------------------------------------------------------------
def load_mega(root: Path):
    """The EMA module, and the encoder layer of the official LRA models (its fairseq package stubbed: the layer needs
    only fairseq.utils' activations, written here in the input's dtype (the official softmax rounds to float32)."""
    _stub("fairseq.incremental_decoding_utils", with_incremental_state=lambda cls: cls)
    ema = _load("official_mega_ema", root / "fairseq/modules/exponential_moving_average.py")
    import torch.nn.functional as F
    activations = {"silu": F.silu, "gelu": F.gelu, "relu": F.relu}
    _package("fairseq", root / "fairseq")
    _stub("fairseq.utils", get_activation_fn=lambda activation: activations[activation],
          relu2=lambda x, onnx_trace=False: F.relu(x).square(),
          laplace=lambda x, mu=0.707107, sigma=0.282095, onnx_trace=False: 0.5 * (1 + torch.erf((x - mu) / (
              sigma * math.sqrt(2.0)))),
          softmax=lambda x, dim, onnx_trace=False: F.softmax(x, dim=dim))
    sys.modules["fairseq"].utils = sys.modules["fairseq.utils"]
    _package("fairseq.modules", root / "fairseq/modules")
    sys.modules["fairseq.modules.exponential_moving_average"] = ema
    encoder = _load("fairseq.modules.mega_sentence_encoder_layer",
                    root / "fairseq/modules/mega_sentence_encoder_layer.py")
    return types.SimpleNamespace(MultiHeadEMA=ema.MultiHeadEMA, Layer=encoder.MegaSentenceEncoderLayer)


def copy_norm(ours, official) -> None:
    """An official SequenceNorm (LayerNorm, ScaleNorm's scalar, BatchNorm1d with its running statistics) into ours."""
    norm = official.norm
    if isinstance(norm, torch.nn.BatchNorm1d):
        ours.norm.load_state_dict(norm.state_dict())
    elif hasattr(norm, "scalar"):
        ours.weight.data.copy_(norm.scalar.reshape(()))
    else:
        ours.load_state_dict(norm.state_dict())


def copy_mega_layer(ours, official) -> None:
    """An official MegaSentenceEncoderLayer into our Mega: the EMA as in compare_mega, mx_proj's rows
    [u (φ), z, r (γ), hx] reordered to ours [z, γ, φ, hx], the relative bias reversed (official b[j − i], ours b[i − j])."""
    mega, nffn = official.mega_layer, official.nffn
    H, z, v = ours.H, ours.z, ours.v
    e, k = mega.move, ours.ema.kernel
    with torch.no_grad():
        k.alpha.copy_(e.delta.view(2, H, -1))
        k.delta.copy_(e.alpha.view(2, H, -1))
        k.beta.copy_(e.beta.view(2, H, -1))
        k.C.copy_(e.gamma.view(2, H, -1))
        ours.ema.D.copy_(e.omega[None])
        rows = torch.cat([torch.arange(H, H + z + v), torch.arange(H), torch.arange(H + z + v, 2 * H + z + v)])
        ours.mix.weight.copy_(mega.mx_proj.weight[rows])
        ours.mix.bias.copy_(mega.mx_proj.bias[rows])
        ours.qk_scale.copy_(mega.gamma)
        ours.qk_shift.copy_(mega.beta)
        ours.rel_bias.copy_(mega.rel_pos_bias.rel_pos_bias.flip(0))
        for mine, theirs in ((ours.to_v, mega.v_proj), (ours.to_h, mega.h_proj), (ours.ffn.fc1, nffn.fc1),
                             (ours.ffn.fc2, nffn.fc2)):
            mine.load_state_dict(theirs.state_dict())
    copy_norm(ours.norm, mega.norm)
    copy_norm(ours.ffn_norm, nffn.norm)


LRA_LAYERS = {  # the official LRA layer settings (facebookresearch/mega fairseq/models/lra/model.py), at small width
    "ListOps": dict(norm="layer", prenorm=False, attention="softmax"),
    "Text, Retrieval": dict(norm="scale", prenorm=False, attention="softmax"),
    "Image, Pathfinder": dict(norm="batch", prenorm=True, attention="laplace", chunk=True),
}


def compare_mega_layers(modules, seed: int, H: int, z: int, ndim: int, L: int) -> None:
    """Each LRA layer configuration with copied weights, on a padded batch (the last sequence 3/4 long), truncation
    at L/2, in evaluation (BatchNorm from running statistics set away from their start)."""
    official_norms = {"layer": "layernorm", "scale": "scalenorm", "batch": "batchnorm"}
    for task, cfg in LRA_LAYERS.items():
        chunk = L // 4 if cfg.get("chunk") else None
        torch.manual_seed(seed)
        official = modules.Layer(H, 2 * H, 2 * H, z, ndim, chunk_size=chunk or -1, truncation=L // 2,
                                 max_positions=L, attention_activation=cfg["attention"],
                                 norm_type=official_norms[cfg["norm"]], prenorm=cfg["prenorm"]).double()
        for module in official.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        ours = ssmkit.Mega(H, ndim, z_dim=z, v_dim=2 * H, attention=cfg["attention"], chunk_size=chunk, causal=False,
                           l_max=L, norm=cfg["norm"], prenorm=cfg["prenorm"], truncation=L // 2).double()
        copy_mega_layer(ours, official)
        official.eval(), ours.eval()
        u = torch.randn(3, L, H, dtype=torch.float64)
        lengths = torch.tensor([L, L, 3 * L // 4])
        pad = torch.arange(L)[None] >= lengths[:, None]
        u = u.masked_fill(pad[..., None], 0.0)
        y_off = official(u.transpose(0, 1), pad)[0].transpose(0, 1)
        y = ours(u, lengths=lengths)[0]
        real = ~pad
        agree(f"Mega layer, LRA {task} ({cfg['norm']}, {'prenorm' if cfg['prenorm'] else 'postnorm'}, "
              f"{cfg['attention']}{', chunks' if chunk else ''}, truncation)", "layer output at real positions",
              y[real], y_off[real])


def compare_mega(ema, seed: int, H: int, ndim: int, L: int) -> None:
    for bidirectional in (False, True):
        fam = f"Mega EMA ({'bidirectional' if bidirectional else 'causal'}, ndim={ndim})"
        torch.manual_seed(seed)
        official = ema.MultiHeadEMA(H, ndim=ndim, bidirectional=bidirectional).double()
        torch.manual_seed(seed)
        ours = ssmkit.EMA(H, ndim, bidirectional=bidirectional).double()
        u = torch.randn(L, 2, H, dtype=torch.float64)
        y_off = official(u)
        row(fam, "init: output std on N(0, 1) input", float(y_off.std()), float(ours(u.transpose(0, 1))[0].std()))
        n_dir = 2 if bidirectional else 1
        with torch.no_grad():  # official p = σ(delta) is our α (input weight), σ(alpha) our δ
            ours.kernel.alpha.copy_(official.delta.view(n_dir, H, ndim))
            ours.kernel.delta.copy_(official.alpha.view(n_dir, H, ndim))
            ours.kernel.beta.copy_(official.beta.view(n_dir, H, ndim))
            ours.kernel.C.copy_(official.gamma.view(n_dir, H, ndim))
            ours.D.copy_(official.omega[None])
        agree(fam, "layer output", ours(u.transpose(0, 1))[0], y_off.transpose(0, 1))
    torch.manual_seed(seed)
    layer = ssmkit.Mega(H, ndim, l_max=L)
    row("Mega (gated attention)", "init: projection weight std (official reset_parameters: 0.02)", 0.02,
        float(torch.cat([layer.to_v.weight.flatten(), layer.mix.weight.flatten(), layer.to_h.weight.flatten()]).std()))
    row("Mega (gated attention)", "init: Q/K scale γ mean, std (official N(0, 0.02²))", "0, 0.02",
        f"{float(layer.qk_scale.mean()):.3f}, {float(layer.qk_scale.std()):.3f}")


def load_mega_lra(root: Path):
    """load_mega, and the official LRA model over it: fairseq/models/lra/model.py (LRAModel, LRAEncoder and the
    mega_lra_* architectures) with mega_lra_encoder.py, its fairseq framework stubbed (the model and encoder base
    classes plain modules, the registry decorators the identity, the other LRA encoders and init_bert_params never
    used here); ``readme`` the LRA command lines (examples/mega/README.lra.md)."""
    modules = load_mega(root)
    fairseq = sys.modules["fairseq.modules"]
    for name, file in (("FairseqDropout", "fairseq_dropout"), ("RealNumberEmbedding", "real_number_embedding"),
                       ("LayerDropModuleList", "layer_drop"), ("SequenceNorm", "sequence_norm")):
        setattr(fairseq, name, getattr(importlib.import_module(f"fairseq.modules.{file}"), name))
    fairseq.MegaSentenceEncoderLayer = modules.Layer

    class Base(torch.nn.Module):
        def __init__(self, *args):
            super().__init__()

    identity = lambda *args: (lambda x: x)  # noqa: E731
    _package("fairseq.models", root / "fairseq/models").__dict__.update(
        FairseqEncoderModel=Base, FairseqEncoder=Base, register_model=identity, register_model_architecture=identity)
    _package("fairseq.models.lra", root / "fairseq/models/lra")
    for name in ("Transformer", "Luna", "LSTM", "Flash"):
        _stub(f"fairseq.models.lra.{name.lower()}_lra_encoder", **{f"{name}LRAEncoder": None})
    _stub("fairseq.modules.transformer_sentence_encoder", init_bert_params=None)
    _load("fairseq.models.lra.mega_lra_encoder", root / "fairseq/models/lra/mega_lra_encoder.py")
    lra = _load("fairseq.models.lra.model", root / "fairseq/models/lra/model.py")
    return types.SimpleNamespace(lra=lra, readme=(root / "examples/mega/README.lra.md").read_text(), **vars(modules))


def mega_lra_arguments(readme: str, arch: str, chunk: int = -1) -> dict:
    """The model and optimizer arguments of one LRA command line in the README (the one after model=<arch>), with
    $CHUNK as ``chunk``: {"lr": 0.001, "norm_type": "layernorm", "encoder_normalize_before": True, ...}."""
    import shlex
    block = readme.split(f"model={arch}\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    words = shlex.split(block.replace("${CHUNK}", str(chunk)).replace("$CHUNK", str(chunk)))
    out = {}
    for i, word in enumerate(words):
        if word.startswith("--"):
            value = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else True
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = float(value) if any(c in value for c in ".e") else int(value)
            out[word[2:].replace("-", "_")] = value
    return out


class _Dictionary:
    """What LRAEncoder reads of the task's dictionary: its size and pad index."""

    def __init__(self, size: int, pad: int):
        self.size, self.pad_index = size, pad

    def __len__(self):
        return self.size


# our experiment: (the official architecture, d_output, token inputs, two towers)
MEGA_LRA = {"mega-lra-listops": ("mega_lra_listop", 10, True, False),
            "mega-lra-text": ("mega_lra_imdb", 2, True, False),
            "mega-lra-retrieval": ("mega_lra_aan", 2, True, True),
            "mega-lra-image": ("mega_lra_cifar10", 10, False, False),
            "mega-lra-pathfinder": ("mega_lra_pf32", 2, False, False)}


def official_mega_lra(m, arch: str, small: dict, n_tokens: int | None, d_output: int, chunk: int = -1):
    """(model, args) as fairseq's train.py builds it: the README's command line for ``arch`` over the architecture's
    defaults (model.py's mega_lra_* function, then base_architecture), $CHUNK as ``chunk``, with ``small`` replacing
    what it names (the add_args defaults the model reads under them); LRAModel.build_model over a task whose
    dictionary has n_tokens entries, padding id 0; float64."""
    defaults = {"use_p": False, "rel_pos_bias": "simple"}  # LRAModel.add_args' defaults (the others suppressed)
    args = argparse.Namespace(**{**defaults, **mega_lra_arguments(m.readme, arch, chunk), **small})
    getattr(m.lra, arch)(args)
    task = types.SimpleNamespace(dictionary=_Dictionary(n_tokens, 0) if n_tokens else None)
    return _quiet(lambda: m.lra.LRAModel.build_model(args, task)).double(), args


def copy_mega_lra(ours, official, pair: bool) -> None:
    """Every weight of the official LRA model into ours: the token embedding (or the pixel embedding's w, b as our
    Linear(1, d)), each layer (copy_mega_layer), the final norm, and the classifier: its first Linear with the input
    halves swapped for two towers (the official reads [src1, src], model.py LRAModel.forward; we feed our first
    document as its src), the projection without bias. Ours is filled with NaN first, and the parameter counts must
    match, so that nothing is left uncopied."""
    encoder = official.encoder.encoder
    with torch.no_grad():
        for tensor in list(ours.parameters()) + [b for n, b in ours.named_buffers() if n.endswith(RUNNING)]:
            tensor.fill_(math.nan)
        embedding = encoder.embed_tokens
        if hasattr(embedding, "embed"):
            ours.encoder.weight.copy_(embedding.embed.weight)
        else:
            ours.encoder.weight.copy_(embedding.weight[:, None])
            ours.encoder.bias.copy_(embedding.bias)
        first = official.classifier[0][0]
        weight = torch.cat(first.weight.chunk(2, dim=1)[::-1], dim=1) if pair else first.weight
        ours.decoder[0].weight.copy_(weight)
        ours.decoder[0].bias.copy_(first.bias)
        ours.decoder[3].weight.copy_(official.sentence_projection_layer.weight)
    for mine, theirs in zip(ours.layers, encoder.layers, strict=True):
        copy_mega_layer(mine, theirs)
    if encoder.final_norm is not None:
        copy_norm(ours.final_norm, encoder.final_norm)
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    if count(ours) != count(official):
        raise AssertionError(f"{count(ours)} parameters in ours, {count(official)} in the official model")
    tensors = [*ours.named_parameters(), *ours.named_buffers()]
    left = [n for n, t in tensors if t.is_floating_point() and t.isnan().any()]
    if left:
        raise AssertionError(f"not copied: {left}")


def compare_mega_lra(m, seed: int, H: int = 16, n_layers: int = 2, z: int = 8, hidden: int = 32, ndim: int = 4,
                     L: int = 48, vocab: int = 20, B: int = 3) -> None:
    """Our mega-lra-* experiments (MEGA_LRA) beside the official LRA models (official_mega_lra: the README's command
    line over the architecture; $CHUNK −1, the published full attention, for the token tasks, and for the images
    one chunk of L, as 1024 of 1024 pixels there, then chunks of L/3 on both sides), both at a small size (embedding H,
    n_layers, z, hidden and FFN size ``hidden``, EMA ndim, classifier width ``hidden``, max_positions L, dropout 0;
    the rest as each builds it, ours by build_model), every weight copied (copy_mega_layer's reordering, copy_mega_lra)
    with the BatchNorms moved off their start; the batch: token ids padded with 0 to L, lengths L, 30, 7 (per tower
    for Retrieval, fed as net_input and net_input1), or B·L pixel values. Rows: the logits in evaluation and in
    training mode (batch statistics; dropout 0), each as the official code runs (its EMA's FFT and LayerNorm in
    float32) and with those casts kept in float64 (_float64_casts; what is left for laplace is its rounded constants
    μ = 0.707107, σ = 0.282095 in fairseq/utils.py laplace, ours √½ and √(1/4π)); the (lr, weight decay) of each
    parameter where the trainers differ (fairseq's Adam: one group, the command line's lr and weight decay for every
    parameter, the EMA's included, against our param_groups with the experiment's weight_decay_all and ssm_lr)."""
    small = dict(encoder_embed_dim=H, encoder_layers=n_layers, z_dim=z, encoder_hidden_dim=hidden,
                 encoder_ffn_embed_dim=hidden, n_dim=ndim, classifier_out_dim=hidden, max_positions=L, dropout=0.0,
                 attention_dropout=0.0, act_dropout=0.0)
    for name, (arch, d_output, tokens, pair) in MEGA_LRA.items():
        # an image is one chunk there (1024 of 1024 pixels): here L, and once in chunks of L/3
        for chunk in (None,) if tokens else (L, L // 3):
            overrides = [f"d_model={H}", f"n_layers={n_layers}", "dropout=0.0", "embedding_dropout=0.0",
                         f"layer_options.z_dim={z}", f"layer_options.ndim={ndim}"]
            overrides += [f"layer_options.chunk_size={chunk}"] if chunk else []
            ours, our_config = ours_lra_model(name, overrides, vocab if tokens else None, d_output, L, pair)
            torch.manual_seed(seed)
            official, args = official_mega_lra(m, arch, small, vocab if tokens else None, d_output, chunk or -1)
            fam = (f"Mega LRA {name} ~ official {arch} (H={H}, {n_layers} layers, z={z}, hidden={hidden}, "
                   f"ndim={ndim}, L={L}")
            chunked = f"{fam}, chunk {chunk})" if chunk else fam + ")"
            _nudge_batchnorms(official, seed)
            copy_mega_lra(ours, official, pair)
            (x, lengths), _ = _lra_batch(seed, tokens, pair, B, L, vocab)
            if tokens:
                towers = [(x[:, i], lengths[:, i]) for i in range(2)] if pair else [(x, lengths)]
            else:
                towers = [(x[..., 0], torch.full((B,), L))]
            sample = dict(zip(("net_input", "net_input1"), ({"src_tokens": t, "src_lengths": n} for t, n in towers)))
            padding = "padded batch, lengths " + str(lengths.tolist()) if tokens else "no padding"
            for label, training in (("eval", False), ("training mode (batch statistics, dropout 0)", True)):
                for exact in (False, True):
                    official.train(training), ours.train(training)
                    with torch.no_grad(), _float64_casts(exact):
                        y_off = official(sample)["encoder_out"]
                        y = ours(x, lengths)
                    casts = "with its float32 casts kept in float64" if exact else "as it runs"
                    agree(chunked, f"logits, {label}, {padding}; official {casts}", y, y_off)
        config = {"optimizer": {"lr": args.lr, "weight_decay": args.weight_decay}}
        pairs = [(n, p, n, None) for n, p in ours.named_parameters()]
        row(fam + ")", "optimizer (lr, weight decay) where the trainers differ (fairseq's Adam: every parameter)",
            *_optimizer_settings(config, pairs, ours, our_config))


# -- Liquid-S4 (raminmh/liquid-s4, src/models/sequence/ss/s4.py) ---------------------------------------------------
def load_liquid(root: Path):
    _forget("src")  # the s4 checkout's src (S4ND) may be loaded already
    for name in ("src", "src.utils", "src.models", "src.models.sequence", "src.models.sequence.ss"):
        _package(name, root / name.replace(".", "/"))
    train = _stub("src.utils.train", get_logger=lambda name=None, level=None: logging.getLogger(name))
    sys.modules["src.utils"].train = train
    sys.path.insert(0, str(root))
    return importlib.import_module("src.models.sequence.ss.s4")


def compare_liquid(liquid, seed: int, H: int, N: int, L: int) -> None:
    """Its S4 layer with liquid_kernel and liquid_degree beside ours (official liquid_form), weights copied; also at
    the LRA configs' odd d_state 7, the paper's orders up to 6 and the two-sided layer of its LRA Image config."""
    dplr = importlib.import_module("src.models.sequence.ss.dplr")
    for n in (7, 64, 512):  # the LRA configs' state sizes, as its kernel calls nplr (dtype float32)
        w, P, B, _ = _quiet(lambda: dplr.combination("legs", n, 1, 1))
        order = torch.argsort(-w.imag[0])  # its Im λ < 0 half, conjugated, ascending as ours
        theirs = torch.cat([B[0, order], P[0, 0, order]]).conj().to(torch.complex128)
        for basis in ("official", "first_positive"):
            mine = hippo.nplr("legs", n, basis=basis)
            row(f"Liquid-S4 (N={n})", f"init: B̃ and P̃ of its nplr (conjugated) vs ours, basis {basis}: rel. difference",
                "—", f"{rel(torch.cat([mine.B, mine.P[0]]), theirs):.2g}")
    cases = [("kb", 2, N, False), ("pb", 3, N, False), ("pb", 5, 7, False), ("pb", 2, 7, True), ("kb", 3, 7, True)]
    for kernel, degree, N, bidirectional in cases:
        fam = f"Liquid-S4 ({kernel}, order {degree}, N={N}{', bidirectional' if bidirectional else ''})"
        torch.manual_seed(seed)
        official = _quiet(lambda: liquid.S4(H, d_state=N, l_max=L, transposed=False, liquid_degree=degree,
                                            liquid_kernel="polyb" if kernel == "pb" else kernel,
                                            bidirectional=bidirectional)).double()
        u = 3 * torch.randn(2, L, H, dtype=torch.float64)  # large enough that the order-p terms matter
        y_off = _quiet(lambda: official(u)[0])
        ours = ssmkit.LiquidS4(H, N, l_max=L, liquid_order=degree, liquid_kernel=kernel, liquid_form="official",
                               bidirectional=bidirectional)
        ours = ours.double()
        k, c = official.kernel.kernel, lambda t: torch.view_as_real(torch.view_as_complex(t.detach()).conj().resolve_conj())
        frozen = official.kernel
        with torch.no_grad():
            ours.kernel.log_dt.copy_(k.log_dt)
            ours.kernel.A_real.copy_(k.inv_w_real)
            ours.kernel.A_imag.copy_(-k.w_imag)
            ours.kernel.P.copy_(c(k.P))
            ours.kernel.B.copy_(c(k.B)[0])
            ours.kernel.C.copy_(c(k.C))
            dt = frozen.log_dt.double().exp()[:, None]
            dB = dt / (1 - dt / 2 * frozen.w.to(torch.complex128)) * frozen.B.to(torch.complex128)
            ours.liquid_sum_dB.copy_(2 * dB.sum(-1).real)
            ours.liquid_CB.copy_(2 * (frozen.C.to(torch.complex128) * dB).sum(-1).real)
            ours.D.copy_(official.D)
            ours.output[0].weight.copy_(official.output_linear[0].weight)
            ours.output[0].bias.copy_(official.output_linear[0].bias)
        agree(fam, "layer output (official liquid_form)", ours(u)[0], y_off)
        if bidirectional:
            continue
        causal = ssmkit.LiquidS4(H, N, l_max=L, liquid_order=degree, liquid_kernel=kernel).double()
        causal.load_state_dict({k: v for k, v in ours.state_dict().items() if not k.startswith("liquid")})
        row(fam, "the paper's causal form vs the official computation, rel. output difference", "—",
            rel(causal(u)[0].detach(), y_off.detach()))


# -- Liquid-S4's LRA models (raminmh/liquid-s4 configs/experiment/lra, the fork's train.py) --------------------------
def load_liquid_backbone(root: Path):
    """The Liquid-S4 fork's model as its train.py builds it: src/models/sequence/model.py SequenceModel of block.py
    SequenceResidualBlocks over its S4 layer (src/utils/registry.py's "s4": src/models/sequence/ss/s4.py, with the
    liquid options), src/tasks' encoders and decoders, from the checkout's src package (as load_dss_backbone)."""
    _official_src(root)
    _official_instantiate(root)
    names = {"backbone": "src.models.sequence.model", "encoders": "src.tasks.encoders",
             "decoders": "src.tasks.decoders"}
    return types.SimpleNamespace(root=root, **{k: importlib.import_module(v) for k, v in names.items()})


# our experiment: (the official experiment it mirrors, its dataset's d_output, token inputs, two towers, the paper's
# liquid order with the PB kernel: arXiv 2209.12951 Table 1, which the configs leave to the command line)
LIQUID_LRA = {"liquid-lra-listops": ("s4-lra-listops", 10, True, False, 5),
              "liquid-lra-text": ("s4-lra-imdb", 2, True, False, 6),
              "liquid-lra-retrieval": ("s4-lra-aan", 2, True, True, 2),
              "liquid-lra-image": ("s4-lra-cifar", 10, False, False, 3),
              "liquid-lra-pathfinder": ("s4-lra-pathfinder", 2, False, False, 2),
              "liquid-lra-pathx": ("s4-lra-pathx", 2, False, False, 2)}

# our parameter (or BatchNorm running statistic) -> the official one (its layer is the S4 module itself, its kernel
# the older SSKernelNPLR: log_dt, B, P, C, inv_w_real = log(−Re λ), w_imag = −Im λ of ours)
LIQUID_LRA_NAMES = [(r"encoder\.(\w+)", r"encoder.0.\1"),
                    (r"layers\.(\d+)\.kernel\.A_real", r"backbone.layers.\1.layer.kernel.kernel.inv_w_real"),
                    (r"layers\.(\d+)\.kernel\.A_imag", r"backbone.layers.\1.layer.kernel.kernel.w_imag"),
                    (r"layers\.(\d+)\.kernel\.(\w+)", r"backbone.layers.\1.layer.kernel.kernel.\2"),
                    (r"layers\.(\d+)\.D", r"backbone.layers.\1.layer.D"),
                    (r"layers\.(\d+)\.output\.0\.(\w+)", r"backbone.layers.\1.layer.output_linear.0.\2"),
                    (r"norms\.(\d+)\.(weight|bias)", r"backbone.layers.\1.norm.norm.\2"),  # LayerNorm (Image)
                    *LRA_NAMES[4:]]


def _liquid_kernel_value(name: str, value: torch.Tensor) -> torch.Tensor:
    """An official SSKernelNPLR tensor as ours keeps it: B, C and P conjugated, w_imag negated (ours keeps Im λ > 0)."""
    return -value if name == "A_imag" else _s4_kernel_value(name, value)


def official_liquid_config(root: Path, experiment: str, order: int) -> dict:
    """configs/experiment/lra/<experiment>.yaml as Hydra composes the parts a model and its optimizer are built from
    (official_lra_config; the optimizer group its pipelines select, optimizer/adamw.yaml), with the command line
    model.layer.liquid_kernel=polyb model.layer.liquid_degree=<order> (README.md); the layer's interpolations resolved:
    dropout and n_ssm the model's (${..dropout}, ${..d_model}). l_max (the dataset's __l_max) is set by the caller."""
    config = official_lra_config(root, experiment)
    config["optimizer"] = _merged(_official_yaml(root, "optimizer/adamw.yaml")[1], config.get("optimizer", {}))
    layer = config["model"]["layer"]
    layer.update(liquid_kernel="polyb", liquid_degree=order, dropout=config["model"]["dropout"],
                 n_ssm=config["model"]["d_model"] if layer["n_ssm"] == "${..d_model}" else layer["n_ssm"])
    return config


def _parameter_count(*modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def _freeze_liquid_as(ours, backbone) -> None:
    """Our layers' frozen liquid weights (S, c) from each official layer's SSKernel tensors (its self.B, self.C, self.w,
    self.log_dt: the draws at init, which the kernel's parameters do not move on a GPU or after .double())."""
    with torch.no_grad():
        for mine, block in zip(ours.layers, backbone.layers):
            k = block.layer.kernel
            dt = k.log_dt.double().exp()[:, None]
            dB = dt / (1 - dt / 2 * k.w.to(torch.complex128)) * k.B.to(torch.complex128)
            mine.liquid_sum_dB.copy_(2 * dB.sum(-1).real)
            mine.liquid_CB.copy_(2 * (k.C.to(torch.complex128) * dB).sum(-1).real)


def compare_liquid_lra(m, seed: int, H: int = 16, n_layers: int = 2, L: int = 48, vocab: int = 20, B: int = 3,
                       L_pad: int = 64) -> None:
    """Our liquid-lra-* experiments beside the Liquid-S4 fork's models of the configs they mirror with the paper's PB
    order (official_liquid_config): the parameter count of each at full size (vocabulary ``vocab``), then both built
    small (d_model H, n_layers, d_state 7 where the config's is 7 and 8 otherwise, l_max L, dropout 0; everything
    else as each composes) with every weight copied (lra_pairs with LIQUID_LRA_NAMES, copy_lra with
    _liquid_kernel_value, the frozen liquid weights by _freeze_liquid_as) and the official BatchNorms moved off their
    start; the logits on a batch of B (token ids of lengths L, 30, 7, padded to L_pad and cut by trimmed for ours, as
    our trainer does with trim_padding, and padded to the longest for the official model, as its collates do; or
    values without padding) in evaluation and in training mode, each as the official code runs (its .float() casts)
    and with those casts kept in float64; then the (lr, weight decay) of every parameter (_optimizer_settings). Its
    train.py hands the collate's lengths to the encoder, whose PassthroughSequential passes them on to the backbone
    (src/models/nn/utils.py wrap_kwargs), so each S4 layer zeroes its input's padding: ours mask_padding 'layers'."""
    for name, (experiment, d_output, tokens, pair, order) in LIQUID_LRA.items():
        config = official_liquid_config(m.root, experiment, order)
        fam = f"Liquid-S4 LRA {name} ~ official {experiment}, PB order {order}"
        full = _merged(config, {"model": {"layer": {"l_max": L}}})
        torch.manual_seed(seed)
        official = _quiet(lambda: official_lra_model(m, full, vocab if tokens else None, d_output))
        ours, _ = ours_lra_model(name, [], vocab if tokens else None, d_output, L, pair)
        row(fam, f"parameters at full size (vocabulary {vocab})" if tokens else "parameters at full size",
            f"{_parameter_count(*official):,}", f"{_parameter_count(ours):,}")
        N = 7 if config["model"]["layer"]["d_state"] == 7 else 8
        fam += f" (H={H}, {n_layers} layers, N={N}, L={L})"
        small = {"model": {"d_model": H, "n_layers": n_layers, "dropout": 0.0,
                           "layer": {"d_state": N, "l_max": L, "dropout": 0.0, "n_ssm": H}}}
        torch.manual_seed(seed)
        encoder, backbone, decoder = _quiet(lambda: official_lra_model(m, _merged(config, small),
                                                                       vocab if tokens else None, d_output))
        ours, our_config = ours_lra_model(name, [f"d_model={H}", f"n_layers={n_layers}", f"d_state={N}",
                                                 "dropout=0.0"], vocab if tokens else None, d_output, L, pair)
        _nudge_batchnorms(backbone, seed)
        for block in backbone.layers:  # the first kernel call turns C into the C̃ of l_max, as ours stores it
            _quiet(lambda: block.layer.kernel(L=L, rate=1.0))
        pairs = lra_pairs(ours, encoder, backbone, decoder, LIQUID_LRA_NAMES)
        copy_lra(pairs, H, _liquid_kernel_value)
        _freeze_liquid_as(ours, backbone)
        (x, lengths), (x_off, lengths_off) = _lra_batch(seed, tokens, pair, B, L, vocab)
        x, padding = _trim_as_official(name, our_config, tokens, x, x_off, lengths, L, L_pad)
        for label, training in (("eval", False), ("training mode (batch statistics)", True)):
            for exact in (False, True):
                for module in (encoder, backbone, decoder, ours):
                    module.train(training)
                with torch.no_grad(), _float64_casts(exact):
                    y_off = _quiet(lambda: official_lra_logits(encoder, backbone, decoder, x_off, lengths_off))
                    y = ours(x, lengths)
                casts = "its .float() casts kept in float64" if exact else "as it runs"
                agree(fam, f"logits, {label}, {padding}; official {casts}", y, y_off)
        row(fam, "optimizer (lr, weight decay) where the trainers differ",
            *_optimizer_settings(config, pairs, ours, our_config))


# -- ViS4mer's S4 (md-mohaiminul/ViS4mer s4.py: an older S4 with Λ shared and Q trained apart from P) ---------------
def copy_vis4mer(ours_kernel, official_kernel) -> None:
    """SSKernelNPLR (w (N2,), B = [B, P], C = [C, Q] per channel; its Cauchy sums read conj(C)·B, conj(C)·P, conj(Q)·B,
    conj(Q)·P) into ours: Λ = w, B, P, C = conj(c), Q = q; each mode with Im w < 0 conjugated whole (a conjugate pair
    is the same system) so that ours keeps Im λ >= 0."""
    w = torch.view_as_complex(official_kernel.w.detach().contiguous())
    B, C = (torch.view_as_complex(t.detach().contiguous()) for t in (official_kernel.B, official_kernel.C))
    flip = w.imag < 0
    fix = lambda t: torch.view_as_real(torch.where(flip, t.conj(), t).resolve_conj())  # noqa: E731
    with torch.no_grad():
        ours_kernel.log_dt.copy_(official_kernel.log_dt)
        ours_kernel.A_real.copy_(real_part_inverse(w.real, ours_kernel.real_transform)[None])
        ours_kernel.A_imag.copy_(torch.view_as_real(torch.where(flip, w.conj(), w))[None, :, 1])
        ours_kernel.B.copy_(fix(B[:, 0]))
        ours_kernel.P.copy_(fix(B[:, 1])[None])
        ours_kernel.C.copy_(fix(C[:, 0].conj())[None])
        ours_kernel.Q.copy_(fix(C[:, 1])[None])


def _cauchy_conj(v, z, w, num=2, denom=2):
    """What ViS4mer's pykeops cauchy_conj computes, Σ_n v_n/(z − w_n) + v̄_n/(z − w̄_n), in plain torch (it has no
    fallback without pykeops or the CUDA extension)."""
    v, z, w = v[..., None, :], z[..., None], w[..., None, :]
    return (v / (z - w) + v.conj() / (z - w.conj())).sum(-1)


def compare_vis4mer(s4, seed: int, H: int, N: int, L: int) -> None:
    from ssmkit.models.vis4mer import S4_DEFAULTS, S4_LAYOUT
    fam = f"ViS4mer S4 (N={N})"
    if not s4.has_cauchy_extension:
        s4.cauchy_conj = _cauchy_conj
    torch.manual_seed(seed)
    official = _quiet(lambda: s4.S4(H, l_max=L, d_state=N, transposed=False)).double()
    k = official.kernel.krylov
    ours = ssmkit.S4(H, **{**S4_DEFAULTS, **S4_LAYOUT, "d_state": N}, l_max=L).double()
    shapes = lambda *ts: ", ".join("×".join(map(str, t.shape[:-1])) for t in ts)  # noqa: E731
    row(fam, "init: Λ | B and P | C and Q (complex shapes)", shapes(k.w, k.B, k.C),
        " | ".join(shapes(*ts) for ts in ((ours.kernel.A_imag[..., None],), (ours.kernel.B, ours.kernel.P),
                                          (ours.kernel.C, ours.kernel.Q))))
    row(fam, "init: mean ‖K‖ over channels", kernel_norm(_quiet(lambda: official.kernel(L=L))),
        kernel_norm(ours.kernel(L)))
    copy_vis4mer(ours.kernel, k)
    with torch.no_grad():
        ours.D.copy_(official.D)
    _copy_linear(ours.output, official.output_linear)
    K_tied = _quiet(lambda: official.kernel(L=L))
    with torch.no_grad():  # P and Q apart, as after training: the untied low-rank term is what is compared
        k.C[:, 1].add_(0.3 * torch.randn_like(k.C[:, 1]))
        ours_q = torch.view_as_complex(k.C[:, 1].detach().contiguous())
        flip = torch.view_as_complex(k.w.detach().contiguous()).imag < 0
        ours.kernel.Q.copy_(torch.view_as_real(torch.where(flip, ours_q.conj(), ours_q).resolve_conj())[None])
    K_off = _quiet(lambda: official.kernel(L=L))
    row(fam, "kernel change from moving Q off P (Q += 0.3·CN(0, 1)), rel.", rel(K_off.detach(), K_tied.detach()), "—")
    agree(fam, "kernel, Q ≠ P (official rounds it to float32)", ours.kernel(L)[0], K_off)
    u = torch.randn(2, L, H, dtype=torch.float64)
    agree(fam, "layer output", ours(u)[0], _quiet(lambda: official(u)[0]))


# -- SSSD^S4 (AI4HealthUOL/SSSD: src/imputers/SSSDS4Imputer.py over its own S4, src/imputers/S4Model.py) -------------
def load_sssd(root: Path):
    """The imputer, its S4 module and src/utils/util.py. The imputer imports them as utils.util and imputers.S4Model:
    those names are in sys.modules only while it loads. S4Model imports wandb, tqdm and yaml and never uses them."""
    src = root / "src"
    for name in ("wandb", "tqdm", "yaml"):
        if importlib.util.find_spec(name) is None:
            _stub(name, tqdm=lambda it, *args, **kw: it)
    util = _load("official_sssd_util", src / "utils/util.py")
    s4 = _load("official_sssd_s4", src / "imputers/S4Model.py")
    aliases = {"utils": types.SimpleNamespace(util=util), "utils.util": util,
               "imputers": types.SimpleNamespace(S4Model=s4), "imputers.S4Model": s4}
    saved = {name: sys.modules.get(name) for name in aliases}
    sys.modules.update(aliases)
    try:
        imputer = _load("official_sssd_imputer", src / "imputers/SSSDS4Imputer.py")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name)
            else:
                sys.modules[name] = module
    return types.SimpleNamespace(s4=s4, util=util, imputer=imputer)


def copy_sssd_kernel(ours_kernel, official_kernel) -> None:
    """SSSD's SSKernelNPLR (w, B, P, C per channel; its Cauchy sums read C·B, C·P, Q·B, Q·P with Q = conj(P), i.e.
    A = w − P Pᵀ·conj = Λ − P P*) into our DPLRKernel (tie_pq; C̃ pairs with B unconjugated in both): log Δ, Λ, B, P
    and C̃ as stored; a mode with Im w < 0 is conjugated whole (the same real system), so that ours keeps Im λ >= 0."""
    k = official_kernel
    w = torch.view_as_complex(k.w.detach().contiguous())
    P = torch.view_as_complex(k.P.detach().contiguous())
    if not torch.equal(torch.view_as_complex(k.Q.detach().contiguous()), P.conj()):
        raise ValueError("copy_sssd_kernel: Q is not conj(P) (SSSD never trains either); ours ties Q to P")
    flip = w.imag < 0
    fix = lambda t: torch.view_as_real(torch.where(flip, t.conj(), t).resolve_conj())  # noqa: E731
    with torch.no_grad():
        ours_kernel.log_dt.copy_(k.log_dt)
        ours_kernel.A_real.copy_(torch.log(-w.real))  # real_transform exp: Re λ = −exp(A_real)
        ours_kernel.A_imag.copy_(w.imag.abs())
        ours_kernel.B.copy_(fix(torch.view_as_complex(k.B.detach().contiguous())[0]))
        ours_kernel.P.copy_(fix(P))
        ours_kernel.C.copy_(fix(torch.view_as_complex(k.C.detach().contiguous())))


def _copy_weight_norm(ours, official) -> None:
    """A weight-normalized layer of ours (parametrizations.weight_norm: original0 = g, original1 = v; a Linear for a
    kernel-1 conv) from the official's nn.utils.weight_norm Conv1d (weight_g, weight_v)."""
    w = ours.parametrizations.weight
    with torch.no_grad():
        w.original0.copy_(official.weight_g.reshape(w.original0.shape))
        w.original1.copy_(official.weight_v.reshape(w.original1.shape))
        ours.bias.copy_(official.bias)


def copy_sssd(ours, official) -> None:
    """Every weight of the official SSSDS4Imputer into our SSSD, and its frozen S4 buffers (Δ, w, B, P) too."""
    group = official.residual_layer
    _copy_weight_norm(ours.inp[0], official.init_conv[0].conv)
    _copy_linear(ours.embed[0], group.fc_t1)
    _copy_linear(ours.embed[2], group.fc_t2)
    for mine, theirs in zip(ours.blocks, group.residual_blocks, strict=True):
        _copy_linear(mine.embed, theirs.fc_t)
        _copy_weight_norm(mine.conv, theirs.conv_layer.conv)
        _copy_weight_norm(mine.cond, theirs.cond_conv.conv)
        _copy_weight_norm(mine.res, theirs.res_conv)
        _copy_weight_norm(mine.skip, theirs.skip_conv)
        for layer, s4_layer in ((mine.s4_in, theirs.S41), (mine.s4_out, theirs.S42)):
            layer.norm.load_state_dict(s4_layer.norm_layer.state_dict())
            copy_sssd_kernel(layer.layer.kernel, s4_layer.s4_layer.kernel.kernel)
            with torch.no_grad():
                layer.layer.D.copy_(s4_layer.s4_layer.D)
            _copy_linear(layer.layer.output, s4_layer.s4_layer.output_linear)
    _copy_weight_norm(ours.out[0], official.final_conv[0].conv)
    _copy_linear(ours.out[2], official.final_conv[2].conv)


def _sssd_official(m, cauchy: str, float32_casts: bool):
    """A context for the official's kernel and forward on CPU: cauchy "conj" is pykeops's cauchy_conj (S4Model.py:66,
    written out as _cauchy_conj), "slow" its fallback without pykeops or the CUDA extension (S4Model.py:99, one
    member of each conjugate pair); float32_casts=False skips HippoSSKernel.forward's k.float() (S4Model.py:990) and
    makes float64 the default dtype (util.py:82 draws the step-embedding frequencies in it). Tensor.cuda (util.py:82)
    is the identity meanwhile."""
    import contextlib

    @contextlib.contextmanager
    def context():
        s4, dtype, cuda, forward = m.s4, torch.get_default_dtype(), torch.Tensor.cuda, m.s4.HippoSSKernel.forward
        s4.has_pykeops, s4.cauchy_conj = cauchy == "conj", _cauchy_conj
        torch.Tensor.cuda = lambda self, *args, **kw: self
        if not float32_casts:
            torch.set_default_dtype(torch.float64)
            s4.HippoSSKernel.forward = lambda self, L=None: self.kernel(rate=self.rate, L=L)[0]
        try:
            yield
        finally:
            torch.set_default_dtype(dtype)
            torch.Tensor.cuda, s4.HippoSSKernel.forward, s4.has_pykeops = cuda, forward, False

    return context()


def _sssd_pair(m, seed: int, K: int, H: int, N: int, L: int | None, n_blocks: int):
    """Both imputers from the same seed; L None: the official's l_max 100, ours without l_max (C the plain C)."""
    torch.manual_seed(seed)
    official = _quiet(lambda: m.imputer.SSSDS4Imputer(
        K, H, H, K, n_blocks, 128, 512, 512, s4_lmax=L or 100, s4_d_state=N, s4_dropout=0.0, s4_bidirectional=1,
        s4_layernorm=1))
    torch.manual_seed(seed)
    ours = ssmkit.models.SSSD(K, n_blocks=n_blocks, d_model=H, d_skip=H,
                              layer_options={"d_state": N, "ssm_lr": 0.0, **({"l_max": L} if L else {})})
    return official, ours


def compare_sssd(m, seed: int, K: int, H: int, N: int, L: int, n_blocks: int, paper_size: bool = True) -> None:
    """SSSDS4Imputer (its config's embedding sizes 128 -> 512 -> 512, bidirectional S4 with LayerNorm, no dropout) and
    our SSSD at a small size: the S4 tensors that train, the init of Λ, B̃ and the weight-normalized convolutions;
    the paper size's parameter count; then every official weight perturbed (as after training; its zero output conv
    too) and copied into ours: one S4 kernel and the network output ε_θ(x_t, t | x_obs ⊙ m, m), in float64, with the
    official's Cauchy sum as pykeops computes it, as its CPU fallback computes it, and with and without its float32
    casts (_sssd_official); and the diffusion schedule against util.calc_diffusion_hyperparams."""
    fam = f"SSSD^S4 ({n_blocks} blocks of width {H}, N={N}, K={K}, L={L})"
    official, ours = _sssd_pair(m, seed, K, H, N, L, n_blocks)
    s4_off, s4_ours = official.residual_layer.residual_blocks[0].S41.s4_layer, ours.blocks[0].s4_in.layer
    trained = lambda module: ", ".join(n for n, _ in module.named_parameters()) or "none"  # noqa: E731
    default_lr = ssmkit.models.SSSD(K, n_blocks=1, d_model=H, d_skip=H, layer_options={"d_state": N, "l_max": L})
    row(fam, "init: S4 kernel tensors that train (ours: ssm_lr 0 as the sssd experiments | the default ssm_lr)",
        trained(s4_off.kernel.kernel),
        f"{trained(s4_ours.kernel)} | {trained(default_lr.blocks[0].s4_in.layer.kernel)}")
    if paper_size:  # C̃'s length correction skipped in both (it sets C's values only): 72 dense powers of (512, 64, 64)
        setup_C, m.s4.SSKernelNPLR._setup_C = m.s4.SSKernelNPLR._setup_C, lambda self, double_length=False: None
        try:
            off_big, ours_big = _sssd_pair(m, seed, 14, 256, 64, None, 36)
        finally:
            m.s4.SSKernelNPLR._setup_C = setup_C
        count = lambda module: f"{sum(p.numel() for p in module.parameters()):,}"  # noqa: E731
        row(fam, "init: parameters at the paper size (config_SSSDS4.json: 36 × 256, K = 14, N = 64, l_max 100)",
            count(off_big), count(ours_big))
        del off_big, ours_big
    k_off = s4_off.kernel.kernel
    w = torch.view_as_complex(k_off.w.detach())[0].to(torch.complex128)
    Lam = s4_ours.kernel.Lambda().detach()[0]
    row(fam, "init: modes with Im λ < 0 in the official (LAPACK lists Im > 0 first; it keeps every other)",
        int((w.imag < 0).sum()), int((Lam.imag < 0).sum()))
    order_off, order_ours = w.imag.argsort(), Lam.imag.argsort()
    row(fam, "init: Λ, max |ours − official| (by Im λ; the official's is built in float32)", "—",
        f"{float((Lam[order_ours] - w[order_off]).abs().max()):.1e}")
    BP = lambda B, P: (B * P.conj())  # noqa: E731  (B̃_n P̄_n: free of the eigenvectors' phases)
    bp_off = BP(*(torch.view_as_complex(t.detach())[0, 0].to(torch.complex128) for t in (k_off.B, k_off.P)))
    bp_ours = BP(*(torch.view_as_complex(t.detach())[0] for t in (s4_ours.kernel.B, s4_ours.kernel.P[0])))
    row(fam, "init: B̃_n P̄_n (phase-free), max |ours − official| (both unclipped: no Im B̃ clip at 2)", "—",
        f"{float((bp_ours[order_ours] - bp_off[order_off]).abs().max()):.1e}")
    x_t, x_obs = torch.randn(2, L, K, dtype=torch.float64), torch.randn(2, L, K, dtype=torch.float64)
    mask = (torch.rand(2, L, K) > 0.5).double()
    t = torch.tensor([3, 150])
    off_in = lambda steps: (x_t.transpose(1, 2), x_obs.transpose(1, 2), mask.transpose(1, 2), steps)  # noqa: E731
    convs = [b.res_conv for b in official.residual_layer.residual_blocks]
    std = lambda weights: float(torch.cat([w.detach().flatten() for w in weights]).std())  # noqa: E731
    kaiming = std(c.weight for c in convs)
    with _sssd_official(m, "conj", float32_casts=True):
        _quiet(lambda: official(tuple(a.float() for a in off_in(t[:, None]))))  # its weight_norm hook: w = g v/‖v‖
        row(fam, "init: mean ‖K‖ over channels (one S4 layer)", kernel_norm(_quiet(lambda: k_off(L=L)[0])),
            kernel_norm(s4_ours.kernel(L)))
    row(fam, f"init: std of the residual 1×1 conv weights (official: {kaiming:.3f} from its kaiming_normal_ until the "
        "first forward recomputes them from g, v)", std(c.weight for c in convs),
        std(b.res.weight for b in ours.blocks))

    official, ours = official.double(), ours.double()
    with torch.no_grad():
        for p in official.parameters():  # as after training; the buffers (Δ, w, B, P, Q) stay frozen as in SSSD
            p.add_(0.1 * torch.randn_like(p))
    copy_sssd(ours, official)
    K_ours = ours.blocks[0].s4_in.layer.kernel(L)
    eps = ours.denoise(x_t, x_obs, mask, t)
    with _sssd_official(m, "slow", float32_casts=True):
        agree(fam, "S4 kernel, official as installed from requirements.txt (no pykeops, no CUDA extension: "
              "cauchy_slow, one member of each conjugate pair)", K_ours, _quiet(lambda: k_off(L=L)[0]))
        agree(fam, "ε_θ, the same", eps, _quiet(lambda: official(off_in(t[:, None].double())).transpose(1, 2)))
    with _sssd_official(m, "conj", float32_casts=True):
        agree(fam, "S4 kernel, official with pykeops's Cauchy sum, its nodes as built (float32)", K_ours,
              _quiet(lambda: k_off(L=L)[0]))
        agree(fam, "ε_θ, the same, with its float32 casts (kernel k.float(), step-embedding frequencies)", eps,
              _quiet(lambda: official(off_in(t[:, None].double())).transpose(1, 2)))
    for module in official.modules():  # the official's own _omega, rerun in float64
        if isinstance(module, m.s4.SSKernelNPLR):
            module._omega(module.L, dtype=torch.complex128, device=module.C.device, cache=True)
    with _sssd_official(m, "conj", float32_casts=False):
        agree(fam, "S4 kernel, official with pykeops's Cauchy sum, nodes in float64", K_ours,
              _quiet(lambda: k_off(L=L)[0]))
        agree(fam, "ε_θ, the same, float64 throughout", eps,
              _quiet(lambda: official(off_in(t[:, None].double())).transpose(1, 2)))

    T, beta_0, beta_T = ours.schedule.T, ours.config["beta_0"], ours.config["beta_T"]
    names = (("Beta", "beta"), ("Alpha", "alpha"), ("Alpha_bar", "alpha_bar"), ("Sigma", "sigma"))
    for label, dtype in (("in float32 (its default dtype)", torch.float32), ("in float64", torch.float64)):
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            dh = m.util.calc_diffusion_hyperparams(T, beta_0, beta_T)
        finally:
            torch.set_default_dtype(default)
        diff = max(float(((getattr(ours.schedule, b) - dh[a].double()) / dh[a].double()).abs().max()) for a, b in names)
        row(fam, f"diffusion schedule β, α, ᾱ, σ (T={T}): max rel. |ours − official|, official {label}", "—",
            f"{diff:.1e}")


# -- CCNN (david-knigge/ccnn, models/resnet.py over ckconv/nn/flexconv.py and ckconv/nn/ck/magnet.py) ------------------
def load_ccnn(root: Path):
    """The official ResNet (S4 blocks over SeparableFlexConv and MAGNet) without its packages' __init__s, which import
    the hooks (wandb, matplotlib) and the point-cloud convolutions (torch_geometric): ckconv and its subpackages are
    bare packages given the few names these checks reach, and models imports only its blocks. omegaconf's OmegaConf
    (an annotation) is the attribute dict. The models package is dropped from sys.modules before and after (the
    standalone SaShiMi's checkout has one too)."""
    sys.modules["omegaconf"].OmegaConf = _AttrDict
    _forget("models")
    for name in ("ckconv", "ckconv.nn", "ckconv.nn.ck", "ckconv.nn.functional", "ckconv.utils", "models"):
        _package(name, root / name.replace(".", "/"))
    sys.modules["ckconv.utils"].linspace_grid = importlib.import_module("ckconv.utils.grids").linspace_grid
    functional = sys.modules["ckconv.nn.functional"]
    for module, names in (("conv", ("conv2d", "conv3d", "fftconv2d", "fftconv3d")),
                          ("causal_conv", ("conv1d", "fftconv1d"))):
        source = importlib.import_module(f"ckconv.nn.functional.{module}")
        functional.__dict__.update({n: getattr(source, n) for n in names})
    nn, linear = sys.modules["ckconv.nn"], importlib.import_module("ckconv.nn.linear")
    nn.Linear1d, nn.Linear2d, nn.Linear3d = linear.Linear1d, linear.Linear2d, linear.Linear3d
    sys.modules["ckconv.nn.ck"].MAGNet = importlib.import_module("ckconv.nn.ck.magnet").MAGNet
    nn.SeparableFlexConv = importlib.import_module("ckconv.nn.flexconv").SeparableFlexConv
    resnet = importlib.import_module("models.resnet")
    _forget("models")
    return resnet


class _DefaultDtype:
    """torch's default dtype set for a while: the official CCNN draws its kernel positions, the mask's parameters and
    threshold in it (torch.linspace, torch.Tensor([...])), so float64 needs it before building and at the first
    forward."""

    def __init__(self, dtype):
        self.dtype = dtype

    def __enter__(self):
        self.saved = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc):
        torch.set_default_dtype(self.saved)


def official_ccnn(resnet, dim: int, d_input: int, d_output: int, H: int, n_blocks: int, hidden: int, omega_0: float,
                  dropout: float, mask_width: float = 0.075):
    """The official ResNet as its configs build it (cfg/config.yaml with experiments/README.md's sMNIST and 2DImage
    CCNN command lines: S4 prenorm blocks, BatchNorm, GELU, Dropout2d, SeparableFlexConv over a 3-layer MAGNet with
    bias and Chang init, Gaussian mask with threshold 0.1 and dynamic cropping, causal FFT kernels as long as the
    input for sequences, centered 33 × 33 kernels for images), in the current default dtype."""
    net = _AttrDict(no_hidden=H, no_blocks=n_blocks, data_dim=dim, norm="BatchNorm", dropout=dropout, dropout_in=0.0,
                    dropout_type="Dropout2d", block=_AttrDict(type="S4", prenorm=True), block_width_factors=[0.0],
                    downsampling=[], downsampling_size=-1, nonlinearity="GELU")
    kernel = _AttrDict(type="MAGNet", no_hidden=hidden, no_layers=3, omega_0=omega_0, input_scale=0.0, bias=True,
                       size="same" if dim == 1 else 33, chang_initialize=True, norm="Identity",
                       nonlinearity="Identity", init_spatial_value=1.0)
    conv = _AttrDict(type="SeparableFlexConv", causal=dim == 1, use_fft=dim == 1, bias=True, padding="same", stride=1)
    mask = _AttrDict(type="gaussian", init_value=mask_width, threshold=0.1, dynamic_cropping=True, temperature=0.0,
                     learn_mean=False)
    network = resnet.ResNet_sequence if dim == 1 else resnet.ResNet_image
    return _quiet(lambda: network(d_input, d_output, net, kernel, conv, mask))


def copy_ckconv(ours, official) -> None:
    """A SeparableFlexConv into our CKConv: the MAGNet's Gabor filters (μ, γ, the 1×1 conv's W and b), its hidden and
    output 1×1 convs, the mask's width and mean, the depthwise bias and the channel mixer."""
    net, kernel = ours.kernel.net, official.Kernel
    with torch.no_grad():
        for i, layer in enumerate(kernel.filters):
            net.mu[i].copy_(layer.mu)
            net.gamma[i].copy_(layer.gamma)
            net.W[i].copy_(layer.linear.weight.reshape(net.W[i].shape))
            net.b[i].copy_(layer.linear.bias)
        ours.kernel.mask_width.copy_(official.mask_width_param)
        ours.kernel.mask_mean.copy_(official.mask_mean_param)
        ours.bias.copy_(official.bias)
    for mine, theirs in zip(net.U, kernel.linears, strict=True):
        _copy_linear(mine, theirs)
    _copy_linear(net.V, kernel.output_linear)
    _copy_linear(ours.mixer, official.channel_mixer)


def copy_ccnn(ours, official) -> None:
    """Every weight and BatchNorm statistic of the official ResNet into our CCNN."""
    copy_ckconv(ours.encoder, official.conv1)
    ours.encoder_norm.norm.load_state_dict(official.norm1.state_dict())
    for i, block in enumerate(official.blocks):
        ours.norms[i].norm.load_state_dict(block.norm1.state_dict())
        copy_ckconv(ours.convs[i], block.conv1)
        _copy_linear(ours.linears[i], block.linear1)
    ours.final_norm.norm.load_state_dict(official.out_norm.state_dict())
    _copy_linear(ours.decoder, official.out_layer)


def _official_kernel(conv, causal: bool) -> torch.Tensor:
    """The kernel a SeparableFlexConv sampled at its last forward, in our layout (C, lags) or (C, *grid): a causal
    one is stored from the farthest lag to lag 0 there."""
    K = conv.conv_kernel[0].detach()
    return K.flip(-1) if causal else K


def _common_taps(K_a: torch.Tensor, K_b: torch.Tensor, causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Two kernels cut to the taps both keep: the first lags (causal), the central offsets (odd centered grids)."""
    sizes = [min(a, b) for a, b in zip(K_a.shape[1:], K_b.shape[1:])]
    cut = lambda K: K[(slice(None), *(slice(0, k) if causal else slice((n - k) // 2, (n + k) // 2)  # noqa: E731
                                      for n, k in zip(K.shape[1:], sizes)))]
    return cut(K_a), cut(K_b)


def _fused_gabor(call):
    """call() with our MAGNet's sin(W x + b) taken from F.linear (one rounding, as a 1×1 Conv1d computes it) instead
    of x @ Wᵀ + b: at D = 1 the two differ by an ulp of W x, ~1e-11 at the sMNIST ω0."""
    from ssmkit.kernels import magnet
    plain = magnet.gabor

    def fused(x, gamma, mu, W, b):
        window = torch.exp(-0.5 * (gamma * (x[:, None, :] - mu)).square().sum(-1))
        return window * torch.sin(torch.nn.functional.linear(x, W, b))

    magnet.gabor = fused
    try:
        return call()
    finally:
        magnet.gabor = plain


def compare_ccnn(resnet, seed: int, dim: int, H: int, n_blocks: int, hidden: int, shape: tuple[int, ...],
                 omega_0: float) -> None:
    """The official ResNet (official_ccnn) and our CCNN at a small size: parameter counts at the paper's sizes, the
    kernel network's init (γ, μ, the frequencies over 2π ω0 γ), the mask's init and the kernel grid it crops; then
    the official's weights after its first forward (which sets the grid and the Chang scale), each perturbed (as after
    training; the mask widths spread from 0.05 to 0.3 so that the crops differ) and the BatchNorm statistics moved,
    copied into ours: one sampled kernel, one block's output and the logits in eval mode, and the logits in train mode
    with dropout 0 (batch statistics), in float64."""
    causal = dim == 1
    grid = "×".join(map(str, shape))
    fam = f"CCNN ({'sequence' if causal else 'image'} {grid}, {n_blocks} blocks of width {H}, MAGNet hidden {hidden})"
    count = lambda module: f"{sum(p.numel() for p in module.parameters()):,}"  # noqa: E731
    with _DefaultDtype(torch.float64):
        for sizes, (n, width, k_hidden) in (("CCNN-4,140", (4, 140, 32)), ("CCNN-6,380", (6, 380, 64))):
            torch.manual_seed(seed)
            big = official_ccnn(resnet, dim, 1, 10, width, n, k_hidden, omega_0, 0.1)
            mine = ssmkit.models.CCNN(1, 10, d_model=width, n_layers=n, dim=dim, l_max=784 if causal else None,
                                      hidden=k_hidden, omega_0=omega_0)
            row(fam, f"init: parameters at {sizes} (10 classes)", count(big), count(mine))
        kernels = lambda: [m.Kernel for m in big.modules() if hasattr(m, "Kernel")]  # noqa: E731
        theirs = [(layer.gamma, layer.mu, layer.linear.weight.flatten(1)) for k in kernels() for layer in k.filters]
        ours = [(g, mu, W) for k in mine.modules() if hasattr(k, "net") for g, mu, W in
                zip(k.net.gamma, k.net.mu, k.net.W)]
        theirs, ours = ([tuple(t.detach() for t in p) for p in ps] for ps in (theirs, ours))
        for label, stat in (
                ("mean γ per layer (Gamma(6/(l+1), 1): 6, 3, 2, 1.5)",
                 lambda ps: ", ".join(f"{float(torch.cat([p[0].flatten() for p in ps[i::4]]).mean()):.2f}"
                                      for i in range(4))),
                ("μ range (causal: 1 − 1.667·0.075 to 1; centered: ±1.667·0.075)",
                 lambda ps: f"{float(min(p[1].min() for p in ps)):.3f} to {float(max(p[1].max() for p in ps)):.3f}"),
                ("max |W| / (2π ω0 γ) (U(±1/√D))",
                 lambda ps: f"{max(float((p[2] / (2 * math.pi * omega_0 * p[0])).abs().max()) for p in ps):.3f}")):
            row(fam, f"init at CCNN-6,380: {label}", stat(theirs), stat(ours))
        row(fam, "init: ω0, mask width σ, mask mean", f"{big.conv1.Kernel.filters[0].omega_0}, "
            f"{float(big.conv1.mask_width_param[0].detach())}, {float(big.conv1.mask_mean_param[0])}",
            f"{mine.encoder.kernel.net.omega_0}, {float(mine.encoder.kernel.mask_width[0].detach())}, "
            f"{float(mine.encoder.kernel.mask_mean[0])}")
        for length in ((784, shape[0]) if causal else (None,)):  # a fresh module: the first input sets its grid
            conv = official_ccnn(resnet, dim, 1, 10, 4, 1, 4, omega_0, 0.1).conv1
            K_off = _quiet(lambda: conv.construct_masked_kernel(torch.zeros(1, 1, *((length,) if causal else shape))))
            layer = ssmkit.CKConv(1, length, dim=dim, hidden=4, omega_0=omega_0)
            where = f"L = {length}" if causal else "the 33 × 33 grid"
            row(fam, f"init: kernel grid kept by the σ = 0.075 mask at {where}", "×".join(map(str, K_off.shape[2:])),
                "×".join(map(str, layer.kernel().shape[1:])))

        torch.manual_seed(seed)
        official = official_ccnn(resnet, dim, 1, 10, H, n_blocks, hidden, omega_0, 0.1)
        x = torch.randn(3, *shape, 1)
        off_in = lambda t: t.movedim(-1, 1)  # noqa: E731  (channels first there)
        official.eval()
        _quiet(lambda: official(off_in(x)))  # its first forward: the kernel grid, the crop step and Chang's scale
        ours = ssmkit.models.CCNN(1, 10, d_model=H, n_layers=n_blocks, dim=dim, l_max=shape[0] if causal else None,
                                  hidden=hidden, omega_0=omega_0).double()
        with torch.no_grad():
            row(fam, f"init: mean ‖K‖ over channels, first block, {grid}",
                float(_quiet(lambda: official.blocks[0].conv1.construct_masked_kernel(off_in(x)[:, :1].expand(
                    -1, H, *shape))).flatten(2).norm(dim=-1).mean()),
                float(ours.convs[0].kernel().flatten(1).norm(dim=-1).mean()))
        with torch.no_grad():
            for name, p in official.named_parameters():
                if name.endswith("mask_width_param"):
                    p.copy_(0.05 + 0.25 * torch.rand_like(p))
                else:
                    p.mul_(1 + 0.1 * torch.randn_like(p)).add_(0.01 * torch.randn_like(p))
            for m in official.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.running_mean.copy_(0.3 * torch.randn_like(m.running_mean))
                    m.running_var.copy_(0.5 + torch.rand_like(m.running_var))
        copy_ccnn(ours, official)
        ours.eval()
        h = torch.randn(3, *shape, H)
        with torch.no_grad():
            block = official.blocks[0]
            y_off = _quiet(lambda: block(off_in(h))).movedim(1, -1)
            K_off, K_ours = _official_kernel(block.conv1, causal), ours.convs[0].kernel()
            y_ours = h + ours.gelu(ours.linears[0](ours.dropout(ours.gelu(ours.convs[0](ours.norms[0](h))[0]))))
            kept = lambda K: "×".join(map(str, K.shape[1:]))  # noqa: E731
            if K_off.shape != K_ours.shape:
                row(fam, "kernel grid after the copy (σ moved), first block", kept(K_off), kept(K_ours))
                K_off, K_ours = _common_taps(K_off, K_ours, causal)
            agree(fam, f"first block's kernel ({kept(K_ours)})", K_ours, K_off)
            if causal:  # W x + b ~ 1e5 there: the official's 1×1 Conv1d rounds it once (addmm), ours twice
                agree(fam, "first block's kernel, ours with W x + b rounded once as there", _fused_gabor(
                    lambda: ours.convs[0].kernel()), K_off)
            agree(fam, "first block's output, eval", y_ours, y_off)
            agree(fam, "logits, eval (BatchNorm running statistics)", ours(x), _quiet(lambda: official(off_in(x))))
            for m in official.modules():
                if isinstance(m, torch.nn.Dropout2d):
                    m.p = 0.0
            ours.dropout.p = 0.0
            official.train(), ours.train()
            agree(fam, "logits, train with dropout 0 (batch statistics)", ours(x), _quiet(lambda: official(off_in(x))))


def compare_vis4mer_model(s4, models, seed: int, d_input: int, d_model: int, L: int) -> None:
    """The whole official ViS4mer (models.py: its S4 stages, LayerNorm, AvgPool1d(2), Linear + GELU, mean, decoder)
    beside ours with copied weights, in float32: its forward casts the input to float32 whatever the weights."""
    fam = f"ViS4mer model (d_input {d_input}, d_model {d_model}, 2 stages, L {L})"
    torch.manual_seed(seed)
    official = _quiet(lambda: models.ViS4mer(d_input, L, 3, d_model, 2, dropout=0.2)).eval()
    ours = ssmkit.models.ViS4mer(d_input, 3, d_model=d_model, n_layers=2, l_max=L).eval()
    count = lambda m: f"{sum(p.numel() for p in m.parameters()):,}"  # noqa: E731
    row(fam, "init: parameters", count(official), count(ours))
    paper = (_quiet(lambda: models.ViS4mer(1024, 11820, 10, 1024, 3)), ssmkit.models.ViS4mer(1024, 10, l_max=11820))
    row(fam, "init: parameters at the paper's size (1024 wide, 3 stages, 11,820 tokens, 10 classes; the official "
             "also holds its encoder Linear, 1,049,600, which it skips when d_input = d_model)", *(count(m) for m in paper))
    with torch.no_grad():
        for stage, (layer, norm, linear) in enumerate(zip(official.s4_layers, official.norms, official.linears)):
            for t in (layer.kernel.krylov.C, layer.D, norm.weight, norm.bias):  # off their init, so that they count
                t.add_(0.1 * torch.randn_like(t))
            copy_vis4mer(ours.layers[stage].kernel, layer.kernel.krylov)
            ours.layers[stage].D.copy_(layer.D)
            _copy_linear(ours.layers[stage].output, layer.output_linear)
            ours.norms[stage].load_state_dict(norm.state_dict())
            ours.mixers[stage][0].load_state_dict(linear.state_dict())
        ours.decoder.load_state_dict(official.decoder.state_dict())
        ours.encoder.load_state_dict(official.encoder.state_dict())
    x = torch.randn(2, L, d_input)
    agree(fam, "logits, eval (float32)", ours(x), _quiet(lambda: official(x)))


# -- S5 (lindermanlab/S5, JAX): our init against the official formulas ------------------------------------------------
def compare_s5(seed: int, H: int, P: int) -> None:
    fam = f"S5 (P={P}, H={H})"
    torch.manual_seed(seed)
    layer = ssmkit.S5(H, P)
    B, C = torch.view_as_complex(layer.B.detach()), torch.view_as_complex(layer.C.detach())
    row(fam, "init: E|B̃|² (official: LeCun over fan-in P → 1/P)", 1 / P, float(B.abs().square().mean()))
    row(fam, "init: E|C̃|² (official trunc_standard_normal: 2/P)", 2 / P, float(C.abs().square().mean()))
    row(fam, "init: blocks J (official default 8)", 8, int((layer.A_imag == layer.A_imag[0]).sum()))
    Lam, _ = hippo.hippo_n_blocks(P, 8)
    Lam_ours = layer.Lambda().detach().to(torch.complex128)
    row(fam, "init: max |Λ − HiPPO-N blocks|", 0.0, float((Lam_ours - Lam).abs().max()))
    row(fam, "defaults: activation, C_init", "half_glu1, trunc_standard_normal", f"{layer.activation}, trunc_normal")


# -- S5 with copied weights (lindermanlab/S5 s5/ssm.py S5SSM, s5/layers.py SequenceLayer, s5/seq_model.py) ----------
S5_C_INITS = {"trunc_normal": "trunc_standard_normal", "lecun": "lecun_normal", "complex_normal": "complex_normal"}
S5_ACTIVATIONS = {"half_glu": "half_glu1", "half_glu2": "half_glu2", "full_glu": "full_glu", "gelu": "gelu"}
# (activation, C_init, disc, clip_eigs) in our names: each value of each option at least once
S5_SETTINGS = [("half_glu", "trunc_normal", "zoh", False), ("half_glu2", "lecun", "zoh", True),
               ("full_glu", "complex_normal", "bilinear", False), ("gelu", "lecun", "bilinear", False)]


def load_s5(root: Path):
    """The official s5 package's model modules (ssm_init, ssm, layers, seq_model) under the name official_s5, without
    its __init__ or training modules; JAX in float64. Their class fields name jax.numpy.DeviceArray, which JAX has
    since dropped for jax.Array: the alias is put back."""
    import jax
    jax.config.update("jax_enable_x64", True)
    if not hasattr(jax.numpy, "DeviceArray"):
        jax.numpy.DeviceArray = jax.Array
    _package("official_s5", root / "s5")
    return types.SimpleNamespace(jax=jax, **{name: _load(f"official_s5.{name}", root / f"s5/{name}.py")
                                             for name in ("ssm_init", "ssm", "layers", "seq_model")})


def official_s5_ssm(s5, H: int, P: int, J: int, C_init: str, disc: str, bidirectional: bool, clip_eigs: bool):
    """The official S5SSM constructor (a partial, as its train.py hands to the models) for our d_state P in J blocks:
    each block the size-P/J HiPPO-N diagonalized by its make_DPLR_HiPPO, the Im < 0 half of the eigenvalues kept
    (conj_sym, their S5SSM's P is P/2), V and V* block-diagonal."""
    import jax.scipy.linalg
    Lambda, _, _, V, _ = s5.ssm_init.make_DPLR_HiPPO(P // J)
    half = P // (2 * J)
    Lambda, V = Lambda[:half], V[:, :half]
    Lambda = jax.numpy.tile(Lambda, J)
    Vs, Vinvs = jax.scipy.linalg.block_diag(*[V] * J), jax.scipy.linalg.block_diag(*[V.conj().T] * J)
    return s5.ssm.init_S5SSM(H, P // 2, Lambda.real, Lambda.imag, Vs, Vinvs, S5_C_INITS[C_init], disc, 1e-3, 1e-1,
                             True, clip_eigs, bidirectional)


def _nudged(s5, variables: dict, seed: int) -> dict:
    """Every leaf in float64 and moved off its init (zero biases, unit norms, BatchNorm's start statistics), so that
    a weight copied to the wrong place shows; variances stay positive, and one Re λ is set above 0."""
    import numpy as np
    rng = np.random.default_rng(seed)
    flat = s5.jax.tree_util.tree_flatten_with_path(variables)[0]
    out = {}
    for path, leaf in flat:
        keys = tuple(p.key for p in path)
        leaf = np.asarray(leaf, dtype=np.float64)
        if keys[-1] == "var":
            leaf = leaf * rng.uniform(0.5, 2.0, leaf.shape)
        elif keys[-1] == "Lambda_re":  # one Re λ > 0 too, for clip_eigs to act on
            leaf = leaf + 0.1 * rng.standard_normal(leaf.shape)
            leaf[0] = 0.05
        elif keys[-1] != "Lambda_im":  # Λ's imaginary parts are HiPPO-N's frequencies: left as they are
            leaf = leaf + 0.1 * rng.standard_normal(leaf.shape)
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = s5.jax.numpy.asarray(leaf)
    return out


def _t(a) -> torch.Tensor:
    import numpy as np
    return torch.from_numpy(np.array(a, dtype=np.float64))


def copy_s5(ours, params: dict) -> None:
    """The official SequenceLayer's parameters (its 'params' collection: seq, the S5SSM, and its Dense maps) into our
    S5. Λ's parts (as they are: theirs start from the Im < 0 half, ours from the Im > 0 one; both are the same
    system), B̃ (P/2, H, 2) and D are stored alike; log Δ is their log_step (P/2, 1); C̃ (H, P/2, 2), or C1 and
    C2 (bidirectional), or with complex_normal one (H, P, 2) whose second half reads the backward scan, goes to our
    (directions, H, P/2, 2). The GLU maps: half_glu1/2 gate with their out2 (ours out1); full_glu out1, out2 alike.
    flax's Dense kernel is (in, out), torch's weight (out, in)."""
    seq = params["seq"]
    if "C1" in seq:
        C = torch.stack([_t(seq["C1"]), _t(seq["C2"])])
    else:
        C = _t(seq["C"]).unflatten(1, (-1, ours.P2)).transpose(0, 1)
    with torch.no_grad():
        for name, value in (("A_real", _t(seq["Lambda_re"])), ("A_imag", _t(seq["Lambda_im"])), ("B", _t(seq["B"])),
                            ("log_dt", _t(seq["log_step"])[:, 0]), ("C", C), ("D", _t(seq["D"]))):
            target = getattr(ours, name)
            if target.shape != value.shape:
                raise AssertionError(f"S5 {name}: ours {tuple(target.shape)}, official {tuple(value.shape)}")
            target.copy_(value)
        dense = {"half_glu": [("out1", "out2")], "half_glu2": [("out1", "out2")], "gelu": [],
                 "full_glu": [("out1", "out1"), ("out2", "out2")]}[ours.activation]
        for mine, theirs in dense:
            getattr(ours, mine).weight.copy_(_t(params[theirs]["kernel"]).T)
            getattr(ours, mine).bias.copy_(_t(params[theirs]["bias"]))


def copy_s5_norm(ours, params: dict, stats: dict) -> None:
    """flax BatchNorm (scale, bias; running mean, var) into our ChannelBatchNorm (eps 1e-5 in both)."""
    with torch.no_grad():
        for mine, theirs in ((ours.norm.weight, params["scale"]), (ours.norm.bias, params["bias"]),
                             (ours.norm.running_mean, stats["mean"]), (ours.norm.running_var, stats["var"])):
            mine.copy_(_t(theirs))


def _copy_dense(ours, params: dict) -> None:
    with torch.no_grad():
        ours.weight.copy_(_t(params["kernel"]).T)
        ours.bias.copy_(_t(params["bias"]))


def _s5_ssm_output(layer, u: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
    """Our S5's y = 2 Re(C̃ x) + D u, before its output stage (that stage bypassed for the call)."""
    layer._output = lambda y: y
    try:
        return layer(u, rate=rate)[0]
    finally:
        del layer._output


def compare_s5_layer(s5, seed: int, H: int, P: int, J: int, L: int) -> None:
    """The official S5SSM inside its SequenceLayer (prenorm BatchNorm, as every official LRA and Speech run; eval:
    dropout off, the running statistics) for each of S5_SETTINGS, one- and bidirectional, built with a fixed PRNG
    key, every weight nudged (_nudged) and copied into ours (copy_s5, copy_s5_norm). Rows: the SSM's output
    y = 2 Re(C̃ x) + D u against the S5SSM alone, at rate 1 and at rate 2 against its step_rescale 2; the block's
    output x + S5(Norm(x)) against the SequenceLayer. float64 in both."""
    jax = s5.jax
    x = torch.randn(2, L, H, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    xj = jax.numpy.asarray(x.numpy())
    for bidirectional in (False, True):
        for activation, C_init, disc, clip in S5_SETTINGS:
            fam = (f"S5 layer ({'bi' if bidirectional else 'uni'}, {activation}, C_init {C_init}, {disc}"
                   f"{', clip_eigs' if clip else ''}; H={H}, P={P}, J={J}, L={L})")
            ssm = official_s5_ssm(s5, H, P, J, C_init, disc, bidirectional, clip)
            layer = s5.layers.SequenceLayer(ssm=ssm, dropout=0.1, d_model=H, activation=S5_ACTIVATIONS[activation],
                                            training=False, prenorm=True, batchnorm=True, bn_momentum=0.95)
            variables = _nudged(s5, layer.init(jax.random.PRNGKey(seed), xj[0]), seed)
            params = variables["params"]
            ours = ssmkit.S5(H, P, blocks=J, disc=disc, bidirectional=bidirectional, C_init=C_init, clip_eigs=clip,
                             activation=activation, dropout=0.1).double().eval()
            copy_s5(ours, params)
            norm = ssmkit.layers.norms.norm_class("batch", 0.05)(H).double().eval()
            copy_s5_norm(norm, params["norm"], variables["batch_stats"]["norm"])
            for rate in (1.0, 2.0):
                y = jax.vmap(lambda u: ssm(step_rescale=rate).apply({"params": params["seq"]}, u))(xj)
                with torch.no_grad():
                    mine = _s5_ssm_output(ours, x, rate)
                agree(fam, "SSM output y" + ("" if rate == 1 else " at rate 2 (official step_rescale 2)"), mine, _t(y))
            out = jax.vmap(lambda u: layer.apply(variables, u))(xj)
            with torch.no_grad():
                mine = x + ours(norm(x))[0]
            agree(fam, "block output x + S5(BatchNorm(x))", mine, _t(out))


def compare_s5_model(s5, seed: int, H: int, P: int, J: int, L: int, n_layers: int = 2, d_input: int = 3,
                     d_output: int = 5) -> None:
    """The official BatchClassificationModel (Dense encoder, n_layers SequenceLayers with prenorm BatchNorm, mean
    pooling, Dense decoder, log-softmax; eval) against our SequenceModel as the s5-* experiments build it
    (encoder_init and head_init lecun, norm batch, no final norm, no residual dropout, pool mean), weights nudged and
    copied: its log-probabilities against log_softmax of ours. The bidirectional one reads a padded batch
    (padded=True: the blocks see the padding, the mean divides by the lengths; ours mask_padding=False)."""
    jax = s5.jax
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, L, d_input, dtype=torch.float64, generator=gen)
    lengths = torch.tensor([L, L // 2, 5])
    for (activation, C_init, disc, clip), bidirectional in ((S5_SETTINGS[0], False), (S5_SETTINGS[1], True)):
        padded = bidirectional
        fam = (f"S5 model ({n_layers} layers, {'bi' if bidirectional else 'uni'}, {activation}, C_init {C_init}"
               f"{', padded' if padded else ''}; H={H}, P={P}, J={J}, L={L})")
        ssm = official_s5_ssm(s5, H, P, J, C_init, disc, bidirectional, clip)
        model = s5.seq_model.BatchClassificationModel(
            ssm=ssm, d_output=d_output, d_model=H, n_layers=n_layers, padded=padded,
            activation=S5_ACTIVATIONS[activation], dropout=0.1, training=False, mode="pool", prenorm=True,
            batchnorm=True, bn_momentum=0.95)
        xj = jax.numpy.asarray(x.numpy())
        inputs = (xj, jax.numpy.asarray(lengths.numpy())) if padded else xj
        steps = jax.numpy.zeros((x.shape[0], L))
        variables = _nudged(s5, model.init(jax.random.PRNGKey(seed), inputs, steps), seed)
        params, stats = variables["params"], variables["batch_stats"]
        ours = ssmkit.models.SequenceModel(
            d_input, d_output, layer="s5", d_model=H, n_layers=n_layers, prenorm=True, norm="batch", bn_momentum=0.05,
            final_norm=False, encoder_init="lecun", head_init="lecun", dropout=0.0, pool="mean", mask_padding=False,
            layer_options=dict(d_state=P, blocks=J, disc=disc, bidirectional=bidirectional, C_init=C_init,
                               clip_eigs=clip, activation=activation, dropout=0.1)).double().eval()
        _copy_dense(ours.encoder, params["encoder"]["encoder"])
        for i in range(n_layers):
            copy_s5(ours.layers[i], params["encoder"][f"layers_{i}"])
            copy_s5_norm(ours.norms[i], params["encoder"][f"layers_{i}"]["norm"],
                         stats["encoder"][f"layers_{i}"]["norm"])
        _copy_dense(ours.decoder, params["decoder"])
        out = model.apply(variables, inputs, steps)
        with torch.no_grad():
            mine = torch.log_softmax(ours(x, lengths if padded else None), -1)
        agree(fam, "log-probabilities", mine, _t(out))


def compare_s5_retrieval_head(s5, seed: int, H: int, B: int = 3) -> None:
    """The official RetrievalDecoder over its features [o₀, o₁, o₀ − o₁, o₀ ⊙ o₁] (s5/seq_model.py
    RetrievalModel) beside our pair head 's5' over the same pooled features, the Dense weights copied."""
    import numpy as np
    fam = f"S5 Retrieval head (H={H})"
    gen = torch.Generator().manual_seed(seed)
    a, b = (torch.randn(B, H, dtype=torch.float64, generator=gen) for _ in range(2))
    decoder = s5.seq_model.RetrievalDecoder(d_model=H, d_output=2)
    features = np.concatenate([a.numpy(), b.numpy(), (a - b).numpy(), (a * b).numpy()], axis=-1)
    params = decoder.init(s5.jax.random.PRNGKey(seed), features)["params"]
    params = s5.jax.tree_util.tree_map(lambda w: w + 0.1 * s5.jax.random.normal(s5.jax.random.PRNGKey(seed + 1),
                                                                                  w.shape, w.dtype), params)
    ours = ssmkit.models.SequenceModel(4, 2, d_model=H, pair=True, head="s5", head_init="lecun").double()
    _copy_dense(ours.decoder[0], params["layer1"])
    _copy_dense(ours.decoder[2], params["layer2"])
    with torch.no_grad():
        mine = ours.decoder(ssmkit.models.heads.pair_features("s5", a, b))
    agree(fam, "logits, flax's tanh GELU", mine, _t(decoder.apply({"params": params}, features)))


def s5_modules(root: Path):
    """load_s5, or None (a 'skipped' line) when jax or flax does not import."""
    try:
        for name in ("jax", "flax.linen"):
            importlib.import_module(name)
    except ImportError as e:
        print(f"skipped S5 with copied weights: jax and flax do not import ({e})", file=sys.stderr)
        return None
    return load_s5(root)


# -- driver -----------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="folder with the official checkouts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    install_stubs()
    logging.disable(logging.WARNING)
    repo = lambda name: args.official / name  # noqa: E731
    jobs = [
        ("s4", lambda: _load("official_s4", repo("s4") / "models/s4/s4.py"), lambda m: (
            compare_s4(m, args.seed, 64, 64, 256), compare_s4(m, args.seed, 64, 8, 256),
            compare_s4_fout(m, args.seed, 16, 16, 128), compare_s4d(m, args.seed, 64, 64, 256),
            compare_real_transforms(m, args.seed, 16, 16, 256))),
        ("s4", lambda: load_sashimi(repo("s4")), lambda m: compare_sashimi(m, args.seed, 16, 2, 256)),
        ("s4", lambda: load_sashimi_parts(repo("s4")), lambda m: compare_sashimi_parts(m, args.seed, 8, 64)),
        ("s4", lambda: load_s4nd(repo("s4")), lambda m: (s4nd_defaults(), compare_s4nd(m, args.seed, 8, 16, (16, 12)))),
        ("s4", lambda: load_s4_backbone(repo("s4")), lambda m: (compare_backbone(m, args.seed),
                                                                 compare_backbone_init(m, args.seed))),
        ("dss", lambda: load_dss_backbone(repo("dss")), lambda m: (compare_dss(m.dss, args.seed, 32, 32, 256),
                                                                     compare_dss_lra(m, args.seed))),
        ("dlr", lambda: (_package("official_dlr", repo("dlr") / "src/models/sequence/ss/standalone"),
                         _load("official_dlr.dss", repo("dlr") / "src/models/sequence/ss/standalone/dss.py"))[1],
         lambda m: compare_dlr(m, args.seed, 16, 256, 512)),
        ("SGConv", lambda: _load("official_sgconv", repo("SGConv") / "gconv_standalone.py"),
         lambda m: compare_sgconv(m, args.seed, 32, 1000, 16)),
        ("mega", lambda: load_mega_lra(repo("mega")), lambda m: (compare_mega(m, args.seed, 256, 16, 128),
                                                                   compare_mega_layers(m, args.seed, 32, 16, 8, 64),
                                                                   compare_mega_lra(m, args.seed))),
        ("liquid-s4", lambda: load_liquid(repo("liquid-s4")), lambda m: compare_liquid(m, args.seed, 8, 16, 64)),
        ("liquid-s4", lambda: load_liquid_backbone(repo("liquid-s4")), lambda m: compare_liquid_lra(m, args.seed)),
        ("ViS4mer", lambda: (_load("s4", repo("ViS4mer") / "s4.py"), _load("official_vis4mer_models",
                                                                            repo("ViS4mer") / "models.py")),
         lambda m: (compare_vis4mer(m[0], args.seed, 16, 16, 128), compare_vis4mer_model(*m, args.seed, 8, 32, 64))),
        ("SSSD", lambda: load_sssd(repo("SSSD")), lambda m: compare_sssd(m, args.seed, 3, 16, 8, 24, 2)),
        ("ccnn", lambda: load_ccnn(repo("ccnn")), lambda m: (  # ω0 of sMNIST and of 2DImage CCNN-4,140
            compare_ccnn(m, args.seed, 1, 16, 2, 16, (64,), 2976.4910261630357),
            compare_ccnn(m, args.seed, 2, 16, 2, 16, (8, 8), 2085.433586112234))),
    ]

    def run(name, load, compare):
        if not repo(name).is_dir():
            print(f"skipped {name}: no folder {repo(name)}", file=sys.stderr)
            return
        compare(_quiet(load))

    for job in jobs:
        run(*job)
    compare_s5(args.seed, 128, 256)
    run("S5", lambda: s5_modules(repo("S5")), lambda m: m is not None and (
        compare_s5_layer(m, args.seed, 8, 16, 2, 32), compare_s5_model(m, args.seed, 8, 16, 2, 32),
        compare_s5_retrieval_head(m, args.seed, 8)))
    lines = ["| family | quantity | official | ssmkit |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in ROWS]
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
