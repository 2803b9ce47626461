import pytest
import torch

from ssmkit.ops import fftconv, fftconv_nd


def _lag_kernel(k, k_rev, j: int) -> torch.Tensor:
    """K(j) of one axis: k[j] for 0 <= j < l, k_rev[−j − 1] for −l <= j < 0, else 0. k (R, C, H, l)."""
    l = k.shape[-1]
    if 0 <= j < l:
        return k[..., j]
    if k_rev is not None and -l <= j < 0:
        return k_rev[..., -j - 1]
    return torch.zeros_like(k[..., 0])


def _direct_2d(u, k, k_rev):
    """y[b,c,h,t1,t2] = (1/R) Σ_r Σ_{s1,s2} K¹_r(t1 − s1) K²_r(t2 − s2) u[b,h,s1,s2], by loops."""
    B, H, L1, L2 = u.shape
    R, C = k[0].shape[:2]
    y = torch.zeros(B, C, H, L1, L2, dtype=u.dtype)
    rev = k_rev or [None, None]
    for t1 in range(L1):
        for t2 in range(L2):
            for s1 in range(L1):
                for s2 in range(L2):
                    K = (_lag_kernel(k[0], rev[0], t1 - s1) * _lag_kernel(k[1], rev[1], t2 - s2)).mean(0)  # (C, H)
                    y[..., t1, t2] += K[None] * u[:, None, :, s1, s2]
    return y


def _kernels(R, C, H, lengths, two_sided):
    k = [torch.randn(R, C, H, l, dtype=torch.float64) for l in lengths]
    return k, ([torch.randn(R, C, H, l, dtype=torch.float64) for l in lengths] if two_sided else None)


@pytest.mark.parametrize("two_sided", [False, True])
@pytest.mark.parametrize("shape,lengths", [((5, 4), (5, 4)), ((6, 3), (2, 3)), ((3, 4), (5, 1))])
def test_fftconv_nd_2d_equals_the_direct_double_sum(two_sided, shape, lengths):
    """Kernels shorter than, equal to and longer than the input: a linear convolution, float64 to 1e-12."""
    u = torch.randn(2, 3, *shape, dtype=torch.float64)
    k, k_rev = _kernels(2, 2, 3, lengths, two_sided)
    y = fftconv_nd(u, k, k_rev)
    assert y.shape == (2, 2, 3, *shape)
    assert (y - _direct_2d(u, k, k_rev)).abs().max() < 1e-12


@pytest.mark.parametrize("two_sided", [False, True])
def test_fftconv_nd_2d_equals_two_per_axis_1d_passes(two_sided):
    """A rank-1 separable kernel is a 1-D convolution along each axis in turn (ops.fftconv), float64 to 1e-12."""
    B, H, L1, L2 = 2, 3, 6, 5
    u = torch.randn(B, H, L1, L2, dtype=torch.float64)
    k, k_rev = _kernels(1, 1, H, (L1, L2), two_sided)
    rev = k_rev or [None, None]
    # axis 2 (width): rows become batch; then axis 1 (height): columns become batch
    rows = u.permute(0, 2, 1, 3).reshape(B * L1, H, L2)
    x = fftconv(rows, k[1][0], None if rev[1] is None else rev[1][0])[:, 0].reshape(B, L1, H, L2)
    cols = x.permute(0, 3, 2, 1).reshape(B * L2, H, L1)
    x = fftconv(cols, k[0][0], None if rev[0] is None else rev[0][0])[:, 0].reshape(B, L2, H, L1)
    expected = x.permute(0, 2, 3, 1)[:, None]
    assert (fftconv_nd(u, k, k_rev) - expected).abs().max() < 1e-12


def test_fftconv_nd_1d_equals_fftconv():
    u = torch.randn(2, 3, 9, dtype=torch.float64)
    k, k_rev = torch.randn(2, 3, 9, dtype=torch.float64), torch.randn(2, 3, 9, dtype=torch.float64)
    assert (fftconv_nd(u, [k[None]], [k_rev[None]]) - fftconv(u, k, k_rev)).abs().max() < 1e-12


def test_fftconv_nd_3d_is_separable():
    """A 3-D kernel that is a delta along two axes shifts the input there and convolves along the third."""
    u = torch.randn(1, 2, 3, 4, 5, dtype=torch.float64)
    delta = torch.zeros(1, 1, 2, 3, dtype=torch.float64)
    delta[..., 1] = 1.0  # lag 1
    k_w = torch.randn(1, 1, 2, 5, dtype=torch.float64)
    y = fftconv_nd(u, [delta, delta[..., :3].clone(), k_w])
    expected = _shifted_then_conv(u, k_w)
    assert (y - expected).abs().max() < 1e-12


def _shifted_then_conv(u, k_w):
    """u shifted by one along axes 1 and 2, then convolved along the last axis with k_w: (B, 1, H, L1, L2, L3)."""
    B, H, L1, L2, L3 = u.shape
    shifted = torch.zeros_like(u)
    shifted[:, :, 1:, 1:] = u[:, :, :-1, :-1]
    lines = shifted.permute(0, 2, 3, 1, 4).reshape(-1, H, L3)
    return fftconv(lines, k_w[0])[:, 0].reshape(B, L1, L2, H, L3).permute(0, 3, 1, 2, 4)[:, None]


def test_fftconv_nd_names_bad_shapes():
    u = torch.randn(2, 3, 4, 4)
    k = [torch.randn(1, 1, 3, 4)] * 2
    with pytest.raises(ValueError, match=r"u: expected shape \(B, H, L_1, .., L_2\)"):
        fftconv_nd(torch.randn(2, 3, 4), k)
    with pytest.raises(ValueError, match=r"k\[1\]: expected shape \(R, C, H=3"):
        fftconv_nd(u, [k[0], torch.randn(1, 1, 2, 4)])
    with pytest.raises(ValueError, match=r"k_rev\[0\]: expected the length of k\[0\]"):
        fftconv_nd(u, k, [torch.randn(1, 1, 3, 2), k[1]])
    with pytest.raises(ValueError, match="k: expected a list"):
        fftconv_nd(u, torch.randn(1, 1, 3, 4))
