"""`numpy_sum` is numpy's sum bit for bit: the engine's per-candle windows rely on it to keep
every decision the vector code takes (a last-bit difference could flip a crossover or a regime)."""

from __future__ import annotations

import numpy as np
import pytest

from bot.analysis.feature_stream import numpy_sum


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
