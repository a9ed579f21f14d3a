"""bot.analysis.feature_replay: the compiled replay of `FeatureStream.update` over known candles
gives update's rows to the last bit (NaN included) on every real seed, in the corner cases
(zero volume and range, flat prices, non-finite values, a bad close), and leaves the stream
where the updates would have; its correctly rounded sums are `math.fsum`'s."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from bot.analysis import feature_replay as R
from bot.analysis import features as F
from bot.analysis.feature_stream import FeatureStream
from bot.market.seed import SEED_FILES, load_seed
from bot.strategies.dqn import FEATURE_HISTORY
from self_test.conftest import make_settings

COLS = ("high", "low", "close", "volume")
PATHS = [pytest.param(True, id="numba"), pytest.param(False, id="python")]

needs_numba = pytest.mark.skipif(R.kernel() is None, reason="numba is not installed")


def _cols(frame):
    return tuple(frame[k].to_numpy(dtype=np.float64) for k in COLS)


def _by_update(stream: FeatureStream, h, lo, c, v) -> np.ndarray:
    """The reference: one update per candle, each row copied."""
    return np.array([stream.update(h[i], lo[i], c[i], v[i]).copy() for i in range(len(c))]
                    ).reshape(len(c), len(stream.row))


def _assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == np.float64
    assert np.array_equal(a, b, equal_nan=True)
    if a.tobytes() != b.tobytes():
        i, j = np.argwhere(a.view(np.int64) != b.view(np.int64))[0]
        raise AssertionError(f"row {i} column {j}: {a[i, j]!r} != {b[i, j]!r}")


def _assert_same_stream(a: FeatureStream, b: FeatureStream) -> None:
    """Every state `update` reads, the same bits (the rolled exact sums the same integers)."""
    for name in ("_z", "_rets", "_closes", "_mfv", "_vol"):
        da, db = getattr(a, name), getattr(b, name)
        assert da.maxlen == db.maxlen
        assert np.asarray(da).tobytes() == np.asarray(db).tobytes(), name
    assert a._ret_sums == b._ret_sums
    scalars = ("_log_c", "_fast", "_slow", "_signal", "_gain", "_move", "_atr", "_st", "_sp", "_sm",
               "_adx")
    for name in scalars:
        assert np.float64(getattr(a, name)).tobytes() == np.float64(getattr(b, name)).tobytes(), name
    assert np.array(a._emas).tobytes() == np.array(b._emas).tobytes()
    assert np.array(a._prev).tobytes() == np.array(b._prev).tobytes()
    assert a.row.tobytes() == b.row.tobytes()


def _replay_against_update(stream: FeatureStream, cols, compiled: bool) -> np.ndarray:
    ref = copy.deepcopy(stream)
    rows = R.replay_rows(stream, *cols, compiled=compiled)
    want = _by_update(ref, *cols)
    _assert_same_bits(rows, want)
    _assert_same_stream(stream, ref)
    return rows


@pytest.mark.parametrize("compiled", PATHS)
def test_replay_is_update_bit_for_bit_on_6000_real_hourly_candles(btc_hourly, compiled):
    h, lo, c, v = _cols(btc_hourly.iloc[:FEATURE_HISTORY + 6000])
    stream = FeatureStream(btc_hourly.iloc[:FEATURE_HISTORY])       # as DQNStrategy seeds it
    rows = _replay_against_update(stream, (h[FEATURE_HISTORY:], lo[FEATURE_HISTORY:],
                                           c[FEATURE_HISTORY:], v[FEATURE_HISTORY:]), compiled)
    assert rows.shape == (6000, 42)
    assert (rows.std(axis=0) > 1e-3).all()       # every feature moves: not a vacuous match
    # the stretch has squares where CPython's `** 2` (libm pow) is not x * x: the kernel's pow matters
    closes = c[FEATURE_HISTORY - 19:]
    differs = 0
    for i in range(0, 6000, 7):
        w = closes[i:i + 20].tolist()
        mid = math.fsum(w) / 20
        differs += sum((x - mid) ** 2 != (x - mid) * (x - mid) for x in w)
    assert differs > 0


@pytest.mark.parametrize("compiled", PATHS)
@pytest.mark.parametrize("symbol, interval", sorted(SEED_FILES))
def test_replay_is_update_bit_for_bit_on_every_seed(symbol, interval, compiled):
    frame = load_seed(symbol, interval)
    first = max(F.warmup_length(32) + 1, min(FEATURE_HISTORY, len(frame) // 4))
    stream = FeatureStream(frame.iloc[:first])
    rows = _replay_against_update(stream, _cols(frame.iloc[first:]), compiled)
    assert len(rows) == len(frame) - first >= 500


@pytest.mark.parametrize("compiled", PATHS)
def test_other_periods_and_window(tmp_path, btc_hourly, compiled):
    s = make_settings(tmp_path, ATR_PERIOD=10, ADX_PERIOD=20, BB_PERIOD=30, BB_STD=2.5)
    stream = FeatureStream(btc_hourly.iloc[9000:10000], window=8, settings=s)
    rows = _replay_against_update(stream, _cols(btc_hourly.iloc[10000:13000]), compiled)
    assert rows.shape == (3000, 18)


def _flat_then_real(frame, start: int):
    """Real candles, then 150 that do not move (zero range, zero volume), then real ones again."""
    h, lo, c, v = (np.array(x) for x in _cols(frame.iloc[start:start + 300]))
    flat = np.full(150, c[99])
    return (np.r_[h[:100], flat, h[100:]], np.r_[lo[:100], flat, lo[100:]],
            np.r_[c[:100], flat, c[100:]], np.r_[v[:100], np.zeros(150), v[100:]])


@pytest.mark.parametrize("compiled", PATHS)
def test_zero_volume_and_zero_range_candles(btc_hourly, compiled):
    stream = FeatureStream(btc_hourly.iloc[:FEATURE_HISTORY])
    cols = _flat_then_real(btc_hourly, FEATURE_HISTORY)
    rows = _replay_against_update(stream, cols, compiled)
    flat = rows[100 + 120:250]           # a flat Bollinger window, no volume in the last 20
    assert (flat[:, 32 + 2] == 0.5).all() and (flat[:, 32 + 5] == 0.0).all()
    assert (flat[:, 32 + 6] == 1.0).all()
    assert (rows[249:, 31] == 0.0).any() or (rows[150:250, 31] == 0.0).all()


@pytest.mark.parametrize("compiled", PATHS)
def test_values_update_alone_handles(btc_hourly, compiled):
    """A NaN or infinite volume, an infinite high, and a money flow volume of 1e306 (a close far
    above a range of one ulp, times a volume of 1e290: too large to roll into a sum) are left to
    update (the kernel resumes after them): NaN and infinite rows, the same bits."""
    stream = FeatureStream(btc_hourly.iloc[:FEATURE_HISTORY])
    h, lo, c, v = (x.copy() for x in _cols(btc_hourly.iloc[FEATURE_HISTORY:FEATURE_HISTORY + 400]))
    v[10] = np.nan
    v[60] = np.inf
    h[120] = np.inf
    h[200], lo[200], c[200], v[200] = 1.0, 1.0 - 2.0 ** -52, 2.0, 1e290
    rows = _replay_against_update(stream, (h, lo, c, v), compiled)
    assert np.isnan(rows[10:130]).any() and np.isinf(rows[120:]).any()


@pytest.mark.parametrize("compiled", PATHS)
@pytest.mark.parametrize("column", [0, 1])
def test_a_nan_high_or_low_leaves_nan_states_the_kernel_carries(btc_hourly, compiled, column):
    """A NaN high (or low) makes the ATR and the Wilder sums NaN for good; the kernel carries
    those NaN states on as update does (NaN ATR features, the distances' math.nan, a held ADX)."""
    stream = FeatureStream(btc_hourly.iloc[:FEATURE_HISTORY])
    cols = [x.copy() for x in _cols(btc_hourly.iloc[FEATURE_HISTORY:FEATURE_HISTORY + 300])]
    cols[column][50] = np.nan
    rows = _replay_against_update(stream, tuple(cols), compiled)
    assert np.isnan(rows[60:, 32 + 3]).all() and np.isnan(rows[60:, 32 + 7:]).all()
    assert np.isfinite(rows[60:, :32 + 3]).all()


@pytest.mark.parametrize("compiled", PATHS)
def test_a_bad_close_raises_what_update_raises(btc_hourly, compiled):
    stream = FeatureStream(btc_hourly.iloc[:FEATURE_HISTORY])
    ref = copy.deepcopy(stream)
    h, lo, c, v = (x.copy() for x in _cols(btc_hourly.iloc[FEATURE_HISTORY:FEATURE_HISTORY + 50]))
    c[30] = 0.0
    with pytest.raises(ValueError, match="positive"):
        R.replay_rows(stream, h, lo, c, v, compiled=compiled)
    with pytest.raises(ValueError, match="positive"):
        _by_update(ref, h, lo, c, v)
    _assert_same_stream(stream, ref)               # both stand after candle 29
    # an infinite close then a finite one: -inf + inf in the returns' fsum, in both
    stream, ref = FeatureStream(btc_hourly.iloc[:FEATURE_HISTORY]), None
    ref = copy.deepcopy(stream)
    c[30] = np.inf
    with pytest.raises(ValueError, match="inf"):
        R.replay_rows(stream, h, lo, c, v, compiled=compiled)
    with pytest.raises(ValueError, match="inf"):
        _by_update(ref, h, lo, c, v)


@pytest.mark.parametrize("compiled", PATHS)
def test_the_stream_continues_after_a_replay(btc_hourly, compiled):
    """Replay 3,000 candles, then update the next 500 one by one: the same rows and states as a
    stream that saw every candle through update (and a second replay after the updates)."""
    h, lo, c, v = _cols(btc_hourly.iloc[FEATURE_HISTORY:FEATURE_HISTORY + 4000])
    a = FeatureStream(btc_hourly.iloc[:FEATURE_HISTORY])
    b = copy.deepcopy(a)
    R.replay_rows(a, h[:3000], lo[:3000], c[:3000], v[:3000], compiled=compiled)
    _by_update(b, h[:3000], lo[:3000], c[:3000], v[:3000])
    _assert_same_stream(a, b)
    _assert_same_bits(_by_update(a, h[3000:3500], lo[3000:3500], c[3000:3500], v[3000:3500]),
                      _by_update(b, h[3000:3500], lo[3000:3500], c[3000:3500], v[3000:3500]))
    _assert_same_bits(R.replay_rows(a, h[3500:], lo[3500:], c[3500:], v[3500:], compiled=compiled),
                      _by_update(b, h[3500:], lo[3500:], c[3500:], v[3500:]))
    _assert_same_stream(a, b)


def test_an_empty_replay_and_unequal_lengths(btc_hourly):
    stream = FeatureStream(btc_hourly.iloc[:FEATURE_HISTORY])
    before = copy.deepcopy(stream)
    assert R.replay_rows(stream, [], [], [], []).shape == (0, 42)
    _assert_same_stream(stream, before)
    with pytest.raises(ValueError, match="one length"):
        R.replay_rows(stream, [1.0], [1.0], [1.0, 2.0], [1.0])


def _adversarial() -> list[np.ndarray]:
    """Sums where a naive or a half-careful sum goes wrong: cancellation, ties to even, subnormals."""
    rng = np.random.default_rng(17)
    cases = [
        [1e100, 1.0, -1e100], [1.0, 2.0 ** -53, 2.0 ** -106], [1.0, 2.0 ** -53, -(2.0 ** -106)],
        [1.0, -(2.0 ** -53), 2.0 ** -106], [2.0 ** 53, 1.0, 2.0 ** -60], [2.0 ** 53, 1.0, -(2.0 ** -60)],
        [1.0, 1e-16] * 10, [1e308, -1e308, 1e-308, 5e-324], [5e-324] * 7, [0.1] * 10,
        [1.0, 1e100, 1.0, -1e100], [3.0, -(2.0 ** -52), 2.0 ** -105], [-0.0, 0.0], [],
        [1.7976931348623157e308, -1.7976931348623157e308, 2.0 ** 970],
    ]
    out = [np.array(x, dtype=np.float64) for x in cases]
    for _ in range(300):
        n = int(rng.integers(1, 60))
        scale = 10.0 ** rng.integers(-300, 300, n)
        x = rng.standard_normal(n) * scale
        out.append(np.concatenate([x, -x[: n // 2], rng.standard_normal(3)]))
        out.append(rng.standard_normal(n) * 10.0 ** rng.uniform(-20, 20, n))
    return out


def test_fsum_is_math_fsum():
    fsum, _ = R.fsum_kernel()
    for a in _adversarial():
        assert np.float64(fsum(a)).tobytes() == np.float64(_fsum_or_nan(a)).tobytes(), a


def _fsum_or_nan(x: np.ndarray) -> float:
    try:
        return math.fsum(x.tolist())
    except OverflowError:
        return math.nan


def test_rolled_window_sums_are_math_fsum(btc_hourly):
    """Rolled partials (new value in, old one out: what the kernel keeps) round each window as
    math.fsum does, on real volumes and returns and on long adversarial runs."""
    rng = np.random.default_rng(5)
    c = btc_hourly["close"].to_numpy()
    series = [btc_hourly["volume"].to_numpy()[:5000], np.diff(np.log(c))[:5000], c[:3000],
              np.concatenate(_adversarial()[:15] * 40),
              rng.standard_normal(4000) * 10.0 ** rng.integers(-30, 30, 4000)]
    for x in series:
        for width in (1, 3, 20, 100):
            got = R.window_fsums(x, width)
            want = np.array([_fsum_or_nan(x[i:i + width]) for i in range(len(x) - width + 1)])
            assert got.tobytes() == want.tobytes(), width


def test_by_default_the_kernel_is_loaded_only_once_it_pays(btc_hourly, monkeypatch):
    """`replay_rows` by default replays with the update loop until the process has replayed
    COMPILE_AFTER candles that way (loading numba and the kernel costs what the loop spends on
    ~45,000), then with the kernel, and with the kernel from then on; the rows are the same."""
    asked: list[int] = []
    real = R.kernel
    monkeypatch.setattr(R, "kernel", lambda: asked.append(1) or real())
    monkeypatch.setattr(R, "_looped", 0)
    monkeypatch.setattr(R, "_kernel_ran", False)
    monkeypatch.setattr(R, "COMPILE_AFTER", 2_500)
    frame = btc_hourly.iloc[:FEATURE_HISTORY + 3_000]
    h, lo, c, v = _cols(frame.iloc[FEATURE_HISTORY:])
    stream = FeatureStream(frame.iloc[:FEATURE_HISTORY], window=32)
    want = _by_update(copy.deepcopy(stream), h, lo, c, v)
    got = [R.replay_rows(stream, h[:2_000], lo[:2_000], c[:2_000], v[:2_000])]
    assert asked == [] and R._looped == 2_000            # short: the loop
    got.append(R.replay_rows(stream, h[2_000:2_600], lo[2_000:2_600], c[2_000:2_600], v[2_000:2_600]))
    assert asked == [1] and R._kernel_ran                 # 2,600 >= 2,500: the kernel
    got.append(R.replay_rows(stream, h[2_600:2_610], lo[2_600:2_610], c[2_600:2_610], v[2_600:2_610]))
    assert asked == [1, 1] and R._looped == 2_000         # loaded: the kernel, however short
    _assert_same_bits(np.concatenate(got), want[:2_610])
