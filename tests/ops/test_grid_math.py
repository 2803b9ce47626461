"""The launch helpers' integers: Triton's own values, without its constexpr wrapper's host cost."""
import pytest

from ssmkit.ops.grid_math import cdiv, next_power_of_2


def test_cdiv_and_next_power_of_2_are_tritons():
    triton = pytest.importorskip("triton")
    for x in range(0, 300):
        assert next_power_of_2(x) == triton.next_power_of_2(x)
        for y in (1, 2, 3, 16, 64, 100):
            assert cdiv(x, y) == triton.cdiv(x, y)
    for x in (2 ** 31 - 1, 2 ** 31, 2 ** 40 + 3):
        assert next_power_of_2(x) == triton.next_power_of_2(x) and cdiv(x, 64) == triton.cdiv(x, 64)


def test_without_triton_the_values_are_the_arithmetic():
    assert [cdiv(x, 4) for x in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]
    assert [next_power_of_2(n) for n in (1, 2, 3, 5, 64, 65)] == [1, 2, 4, 8, 64, 128]
