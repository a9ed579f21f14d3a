"""`numpy_sum` is numpy's sum bit for bit, and FeatureStream's rolled exact window sums are
math.fsum's: the per-candle windows rely on them to keep every decision the vector code takes (a
last-bit difference could flip a crossover or a regime)."""

from __future__ import annotations

import numpy as np
import pytest

from bot.analysis.feature_stream import numpy_sum, numpy_window_sums


@pytest.mark.parametrize("n", [1, 5, 8, 10, 20, 30, 100, 128, 129, 300, 2000])
def test_numpy_sum_is_numpys_sum_bit_for_bit(n):
    rng = np.random.default_rng(n)
    differ = 0
    for _ in range(200):
        x = rng.random(n) * 10.0 ** rng.integers(-3, 6) + rng.random()
        assert numpy_sum(x.tolist()) == float(np.sum(x))
        differ += numpy_sum(x.tolist()) != sum(x.tolist())   # plain left-to-right sums differ: the test can fail
    assert n < 8 or differ > 0


def test_numpy_sum_of_a_window_of_real_closes(btc_hourly):
    c = btc_hourly["close"].to_numpy()[:3000]
    lst = c.tolist()
    for end in range(31, 3000, 7):
        for w in (10, 20, 30):
            assert numpy_sum(lst, end - w, w) == float(c[end - w:end].sum())
            assert numpy_sum(lst, end - w, w) / w == float(c[end - w:end].mean())


@pytest.mark.parametrize("n", [1, 7, 8, 20, 30, 128, 129, 300])
def test_window_sums_at_once_are_numpy_sums_of_each_window(btc_hourly, n):
    """`numpy_window_sums` (every window in one call: the engine's bandwidths, the SMA's means in a
    backtest) gives each window's `numpy_sum` bit for bit, on real closes and on their squares; the
    doubling kernel of the vector indicators adds in another order, so the test can tell them apart."""
    from bot.analysis.indicator_kernels import window_sums as doubling

    c = btc_hourly["close"].to_numpy()[:4000]
    other = 0
    for x in (c, c * c):
        got = numpy_window_sums(x, n)
        lst = x.tolist()
        assert len(got) == len(lst) - n + 1
        assert got.tolist() == [numpy_sum(lst, i, n) for i in range(len(got))]
        other += int(np.count_nonzero(doubling(x, n) != got))
    assert other > 0 or n < 8 or n & (n - 1) == 0     # powers of two: both orders agree
    assert len(numpy_window_sums(c[:n - 1], n)) == 0


def test_exact_window_sums_are_fsums_bit_for_bit():
    """FeatureStream rolls its 100-return window's sum and sum of squares on as whole numbers of
    2**-1074 and divides once: the correctly rounded quotient is math.fsum's correctly rounded sum,
    on windows that cancel, mix magnitudes and hold subnormals."""
    import math

    from bot.analysis.feature_stream import _UNIT, _exact, _exact_sums

    rng = np.random.default_rng(7)
    naive_differs = 0
    for _ in range(3000):
        n = int(rng.integers(1, 130))
        x = rng.normal(size=n) * 10.0 ** rng.integers(-300, 140, size=n)
        x[rng.random(n) < 0.2] = 1e16 * rng.choice([-1.0, 1.0])              # cancellation
        x[rng.random(n) < 0.05] = 5e-324                                    # subnormal
        xs = x.tolist()
        total, squares = _exact_sums(xs)
        assert total / _UNIT == math.fsum(xs)
        assert squares / _UNIT == math.fsum([v * v for v in xs])
        assert sum(map(_exact, xs)) == total
        naive_differs += sum(xs) != math.fsum(xs)
    assert naive_differs > 100                          # plain sums differ: the comparison can fail
    assert _exact_sums([1.0, math.inf]) is None and _exact_sums([math.nan]) is None
