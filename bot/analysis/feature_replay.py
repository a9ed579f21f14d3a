"""`FeatureStream.update` over candles known in advance, in one compiled pass, bit for bit.

A backtest knows its candles before it runs; the DQN agent's market features then depend on
the candles alone, so they can be worked out in one pass instead of one `update` call per
candle (~10 us each in Python; the kernel takes ~1.2 us, bench/feature_replay.py). `replay_rows` returns the rows `update` would return, to the
last bit (NaN where it gives NaN), and leaves the stream as the updates would have left it, so
a live candle after the replay carries on as usual.

Bit identity needs the same arithmetic in the same order as `update`, and three things more:
- `math.fsum` is correctly rounded, so any correctly rounded sum gives its bits. The kernel
  keeps Shewchuk's partials (CPython's `msum`, with its final round-half-even correction) per
  window and rolls them on: adding the new value and subtracting the one that leaves are exact
  steps, so the partials always hold the window's exact sum. The exact integer sums of the
  returns (`_exact`, whole multiples of 2**-1074) are correctly rounded sums as well: the same
  partials give them.
- `(x - mid) ** 2` is the C library's `pow(|x - mid|, 2.0)` in CPython, which differs from
  `x * x` in the last bit for about one square in 1,200 (half the exact ties); the kernel calls
  the same `pow` (and passes the exponent in at run time, so LLVM cannot rewrite `pow(x, 2.0)`
  as `x * x`).
  `math.log` is the C library's `log` in both; `math.sqrt` is IEEE's.
- Python's `min` / `max` keep their first argument unless another compares greater / smaller
  (so NaN passes through); `_pymax` / `_pymin` do the same. No fastmath anywhere.

A candle the kernel does not take the ordinary way (a value that is not finite, a close that
is not positive, a sum that would overflow or meet a non-finite value) is handed to `update`
itself, after the stream has been brought up to that candle; the kernel then resumes. So every
case `update` handles, raises on or returns NaN for is `update`'s own.

numba compiles the kernel once per machine (`cache=True`, next to this file) and is imported
only when a replay first runs, as in `bot.research.fast_kernel`; without numba the replay is
the loop over `update` (same rows, slower).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from bot.analysis import indicators as ind
from bot.analysis.feature_stream import _K21, _K50, _K200, FeatureStream, _exact_sums
from bot.analysis.features import DIST_CLIP, RET_CLIP, VOLUME_RATIO_CLIP

__all__ = ["replay_rows", "replay_rows_python", "kernel", "fsum_kernel", "window_fsums"]

# the constants `update` computes, computed the same way (numba freezes globals as they are)
_FAST, _SLOW, _SIGNAL = 2.0 / 13, 2.0 / 27, 2.0 / 10
_KEEP, _ADD = 13 / 14, 1 / 14
_ZERO = ind._ZERO

# where each recursive state sits in the kernel's state array
_LOG_C, _E21, _E50, _E200, _MACD_FAST, _MACD_SLOW, _MACD_SIGNAL, _GAIN, _MOVE = range(9)
_ATR, _ST, _SP, _SM, _ADX, _PH, _PL, _PC = range(9, 17)
_N_STATE = 17
_N_SUMS = 5   # rolled sums: returns, squared returns, closes, volumes, money flow volumes
# values rolled into a window stay below this, so that no order of summing them overflows (and
# rolled sums raise where fsum raises: never); a larger one leaves its candles to update
_HUGE = 1e300

_tried = False


def _pow(x: float, y: float) -> float:
    """The C library's pow (CPython's `float ** float`); replaced by the external function
    when numba compiles the kernel."""
    return math.pow(x, y)


def _pymax(a: float, b: float) -> float:
    """Python's `max(a, b)`: `a` unless `b` compares greater."""
    return b if b > a else a


def _pymin(a: float, b: float) -> float:
    """Python's `min(a, b)`: `a` unless `b` compares smaller."""
    return b if b < a else a


def _partials_add(p: np.ndarray, n: int, x: float) -> int:
    """Add `x` to the partials `p[:n]` (CPython's msum step: the partials stay non-overlapping and
    their sum exact). Returns the new count; -1 when the running sum is not finite (overflow,
    or `x` is not finite: `math.fsum`'s special cases are left to `update`), -2 when `p` is full."""
    i = 0
    for j in range(n):
        y = p[j]
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        yr = hi - x
        lo = y - yr
        if lo != 0.0:
            p[i] = lo
            i += 1
        x = hi
    if x != 0.0:
        if not math.isfinite(x):
            return -1
        if i >= len(p):
            return -2
        p[i] = x
        i += 1
    return i


def _partials_sum(p: np.ndarray, n: int) -> float:
    """The correctly rounded sum of the partials `p[:n]`: CPython's msum ending, from the top
    while exact, then its round-half-even correction. Leaves the partials as they are."""
    hi = 0.0
    if n > 0:
        n -= 1
        hi = p[n]
        lo = 0.0
        while n > 0:
            x = hi
            n -= 1
            y = p[n]
            hi = x + y
            yr = hi - x
            lo = y - yr
            if lo != 0.0:
                break
        if n > 0 and ((lo < 0.0 and p[n - 1] < 0.0) or (lo > 0.0 and p[n - 1] > 0.0)):
            y = lo * 2.0
            x = hi + y
            yr = x - hi
            if y == yr:
                hi = x
    return hi


def _partials_of(p: np.ndarray, a: np.ndarray, lo: int, hi: int, squared: bool) -> int:
    """The partials of `a[lo:hi]` (of their rounded squares when `squared`) afresh; the count, or
    a negative one as `_partials_add`."""
    n = 0
    for j in range(lo, hi):
        x = a[j] * a[j] if squared else a[j]
        n = _partials_add(p, n, x)
        if n < 0:
            return n
    return n


def _tame(a: np.ndarray, lo: int, hi: int) -> bool:
    """No value of `a[lo:hi]` is NaN or as large as `_HUGE` in magnitude."""
    for j in range(lo, hi):
        if not abs(a[j]) < _HUGE:
            return False
    return True


def _partials_roll(p: np.ndarray, n: int, a: np.ndarray, new: int, width: int, squared: bool) -> int:
    """The partials moved on by one window: `a[new]` in, `a[new - width]` out (squared when
    `squared`), rebuilt from the window when they fill up. The count, negative as
    `_partials_add` when the kernel must leave the candle to `update`: also when `a[new]` is
    not tame (the window's rolled sum may then stay finite where fsum's own overflows)."""
    x, old = a[new], a[new - width]
    if not abs(x) < _HUGE:
        return -1
    if squared:
        x, old = x * x, old * old
    n = _partials_add(p, n, x)
    if n >= 0:
        n = _partials_add(p, n, -old)
    if n == -2:
        n = _partials_of(p, a, new - width + 1, new + 1, squared)
    return n


def _fsum(a: np.ndarray) -> float:
    """`math.fsum(a)` for finite sums (NaN where it has a special value or raises)."""
    p = np.empty(len(a) + 1)
    n = _partials_of(p, a, 0, len(a), False)
    return _partials_sum(p, n) if n >= 0 else math.nan


def _window_fsums(a: np.ndarray, width: int) -> np.ndarray:
    """`math.fsum(a[i:i + width])` for every window, by rolled partials (as the kernel rolls
    them); NaN where fsum meets a special value or raises."""
    m = len(a) - width + 1
    out = np.full(max(m, 0), math.nan)
    if m <= 0 or width < 1:
        return out
    p = np.empty(2 * width + 8)
    n = -1
    wild = -1    # the last index of a value that is not `_tame`
    for i in range(m):
        if not _tame(a, i + width - 1, i + width):
            wild = i + width - 1
        if n >= 0 and wild < i - 1:    # this window and the one before tame: roll
            n = _partials_roll(p, n, a, i + width - 1, width, False)
        else:                          # afresh, as fsum sums it (overflowing where it does)
            n = _partials_of(p, a, i, i + width, False)
        if n >= 0:
            out[i] = _partials_sum(p, n)
    return out


def _replay(h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray, start: int, stop: int,
            zs: np.ndarray, rets: np.ndarray, closes: np.ndarray, mfvs: np.ndarray,
            vols: np.ndarray, st: np.ndarray, two: float, n_atr: int, n_adx: int, bb_k: float,
            parts: np.ndarray, counts: np.ndarray, sq: np.ndarray, out: np.ndarray) -> int:
    """`FeatureStream.update` for candles start..stop-1, line for line. The windows are laid out
    flat: `zs` holds the stream's z window then one z per candle (candle i's at wz + i), and so
    do `rets`, `closes`, `mfvs` (money flow volumes) and `vols`; `st` holds the recursive states
    (the `_LOG_C`.. `_PC` slots). Writes row i to `out[i]`. Returns the first candle it left to
    `update` (stop when none): that candle's states and rows are not written."""
    wz, wr, wc, wm = len(zs) - len(c), len(rets) - len(c), len(closes) - len(c), len(mfvs) - len(c)
    # the rolled sums, afresh from the windows the stream holds before `start` (tame ones)
    if not (_tame(rets, start, start + wr) and _tame(closes, start, start + wc)
            and _tame(vols, start, start + wm) and _tame(mfvs, start, start + wm)):
        return start
    for k in range(_N_SUMS):
        if k < 2:
            counts[k] = _partials_of(parts[k], rets, start, start + wr, k == 1)
        elif k == 2:
            counts[k] = _partials_of(parts[k], closes, start, start + wc, False)
        elif k == 3:
            counts[k] = _partials_of(parts[k], vols, start, start + wm, False)
        else:
            counts[k] = _partials_of(parts[k], mfvs, start, start + wm, False)
        if counts[k] < 0:
            return start
    m = wr
    a_adx = 1.0 - 1.0 / n_adx
    for i in range(start, stop):
        hi_, lo_, c_, v_ = h[i], lo[i], c[i], v[i]
        if not (math.isfinite(hi_) and math.isfinite(lo_) and math.isfinite(c_)
                and math.isfinite(v_) and c_ > 0.0):
            return i
        ph, pl, pc = st[_PH], st[_PL], st[_PC]
        # log returns scaled by their trailing volatility
        log_c = math.log(c_)
        r = log_c - st[_LOG_C]
        if not math.isfinite(r):
            return i
        rets[wr + i] = r
        n0 = _partials_roll(parts[0], counts[0], rets, wr + i, wr, False)
        n1 = _partials_roll(parts[1], counts[1], rets, wr + i, wr, True)
        if n0 < 0 or n1 < 0:
            return i
        counts[0], counts[1] = n0, n1
        s1, s2 = _partials_sum(parts[0], n0), _partials_sum(parts[1], n1)
        var = _pymax((s2 - s1 * s1 / m) / (m - 1), 0.0)
        sigma = math.sqrt(var)
        z = _pymin(_pymax(r / sigma, -RET_CLIP), RET_CLIP) if sigma > 0 else 0.0
        # recursions: EMAs, MACD, RSI (Wilder), ATR and ADX (Wilder)
        e21 = (1.0 - _K21) * st[_E21] + _K21 * c_
        e50 = (1.0 - _K50) * st[_E50] + _K50 * c_
        e200 = (1.0 - _K200) * st[_E200] + _K200 * c_
        fast = (1.0 - _FAST) * st[_MACD_FAST] + _FAST * c_
        slow = (1.0 - _SLOW) * st[_MACD_SLOW] + _SLOW * c_
        line = fast - slow
        signal = (1.0 - _SIGNAL) * st[_MACD_SIGNAL] + _SIGNAL * line
        hist = line - signal
        d = c_ - pc
        gain = _KEEP * st[_GAIN] + _ADD * _pymax(d, 0.0)
        move = _KEEP * st[_MOVE] + _ADD * abs(d)
        rsi = gain / move if abs(move) >= _ZERO else 0.0
        # wilder_trend_step
        tr = _pymax(_pymax(hi_ - lo_, abs(hi_ - pc)), abs(lo_ - pc))
        atr = (st[_ATR] * (n_atr - 1) + tr) / n_atr
        up, dn = hi_ - ph, pl - lo_
        plus = up if (up > 0 and up > dn) else 0.0
        minus = dn if (dn > 0 and up < dn) else 0.0
        s_tr = st[_ST] * a_adx + tr
        s_p = st[_SP] * a_adx + plus
        s_m = st[_SM] * a_adx + minus
        adx = st[_ADX]
        if abs(s_tr) >= _ZERO:
            p, q = 100.0 * s_p / s_tr, 100.0 * s_m / s_tr
            if abs(p + q) >= _ZERO:
                adx = (adx * (n_adx - 1) + 100.0 * abs(q - p) / (p + q)) / n_adx
        # windows: Bollinger %b (population std), Chaikin money flow, volume ratio
        closes[wc + i] = c_
        n2 = _partials_roll(parts[2], counts[2], closes, wc + i, wc, False)
        if n2 < 0:
            return i
        counts[2] = n2
        mid = _partials_sum(parts[2], n2) / wc
        ns = 0
        for j in range(i + 1, i + 1 + wc):
            e = closes[j] - mid
            s = _pow(abs(e), two)          # CPython's float ** 2: pow(|x|, 2.0)
            if math.isinf(s):              # OverflowError in CPython: update's to raise
                return i
            ns = _partials_add(sq, ns, s)
            if ns < 0:
                return i
        dev = math.sqrt(_partials_sum(sq, ns) / wc) * bb_k
        upper, lower = mid + dev, mid - dev
        width = upper - lower
        pct_b = (c_ - lower) / width if width > 0 else 0.5
        rng = hi_ - lo_
        mfvs[wm + i] = (((c_ - lo_) - (hi_ - c_)) / rng if rng > 0 else 0.0) * v_
        vols[wm + i] = v_
        n3 = _partials_roll(parts[3], counts[3], vols, wm + i, wm, False)
        n4 = _partials_roll(parts[4], counts[4], mfvs, wm + i, wm, False)
        if n3 < 0 or n4 < 0:
            return i
        counts[3], counts[4] = n3, n4
        vol = _partials_sum(parts[3], n3)
        cmf = _partials_sum(parts[4], n4) / vol if vol > 0 else 0.0
        avg = vol / wm
        ratio = v_ / avg if avg > 0 else 1.0
        # the candle is taken: commit its states and row
        st[_LOG_C] = log_c
        st[_E21], st[_E50], st[_E200] = e21, e50, e200
        st[_MACD_FAST], st[_MACD_SLOW], st[_MACD_SIGNAL] = fast, slow, signal
        st[_GAIN], st[_MOVE] = gain, move
        st[_ATR], st[_ST], st[_SP], st[_SM], st[_ADX] = atr, s_tr, s_p, s_m, adx
        st[_PH], st[_PL], st[_PC] = hi_, lo_, c_
        zs[wz + i] = z
        row = out[i]
        for j in range(wz):
            row[j] = zs[i + 1 + j]
        row[wz] = rsi
        row[wz + 1] = 100.0 * hist / c_
        row[wz + 2] = _pymin(_pymax(pct_b, -1.0), 2.0)
        row[wz + 3] = 100.0 * atr / c_
        row[wz + 4] = adx / 100.0
        row[wz + 5] = cmf
        row[wz + 6] = _pymin(_pymax(ratio, 0.0), VOLUME_RATIO_CLIP)
        if atr > 0:
            row[wz + 7] = _pymin(_pymax((c_ - e21) / atr, -DIST_CLIP), DIST_CLIP)
            row[wz + 8] = _pymin(_pymax((c_ - e50) / atr, -DIST_CLIP), DIST_CLIP)
            row[wz + 9] = _pymin(_pymax((c_ - e200) / atr, -DIST_CLIP), DIST_CLIP)
        else:
            x = 0.0 if atr == 0 else math.nan
            row[wz + 7] = x
            row[wz + 8] = x
            row[wz + 9] = x
    return stop


def kernel() -> Callable[..., Any] | None:
    """The compiled `_replay`, or None when numba is not installed (the update loop runs then).
    The first call binds this module's helpers to their compiled versions (and `_pow` to the C
    library's pow), so the kernel calls machine code all the way down."""
    global _tried, _pow, _pymax, _pymin, _partials_add, _partials_sum, _partials_of
    global _partials_roll, _tame, _replay, _fsum, _window_fsums
    if not _tried:
        _tried = True
        try:
            import numba
            from numba.core import types
        except ImportError:
            return None
        jit = numba.njit(cache=True, nogil=True, error_model="numpy")
        _pow = types.ExternalFunction("pow", types.float64(types.float64, types.float64))
        _pymax, _pymin = jit(_pymax), jit(_pymin)
        _partials_add, _partials_sum = jit(_partials_add), jit(_partials_sum)
        _partials_of, _partials_roll, _tame = jit(_partials_of), jit(_partials_roll), jit(_tame)
        _fsum, _window_fsums = jit(_fsum), jit(_window_fsums)
        _replay = jit(_replay)
    return _replay if hasattr(_replay, "py_func") else None


def fsum_kernel() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(fsum, window_fsums): the compiled correctly rounded sums the kernel uses (the Python
    ones without numba), for tests: `fsum(a)` is `math.fsum(a)`, `window_fsums(a, n)[i]` is
    `math.fsum(a[i:i + n])` by rolled partials."""
    kernel()
    return _fsum, _window_fsums


def window_fsums(a: Any, width: int) -> np.ndarray:
    """`math.fsum` of every window of `width` values of `a`, as the kernel rolls them."""
    return np.asarray(fsum_kernel()[1](np.ascontiguousarray(a, dtype=np.float64), int(width)))


def replay_rows_python(stream: FeatureStream, highs: Any, lows: Any, closes: Any,
                       volumes: Any) -> np.ndarray:
    """The rows of `stream.update` over the candles, one call per candle (the fallback and the
    reference): row i is the copy of what update i returns. Advances the stream."""
    cols = _columns(highs, lows, closes, volumes)
    out = np.empty((len(cols[0]), len(stream.row)), dtype=np.float64)
    _update_loop(stream, *cols, 0, out)
    return out


# Candles a process replays with the update loop before it loads the kernel (`compiled=None`):
# importing numba and loading the cached kernel takes ~0.4 s in a fresh process, what the loop
# (~9 us a candle) spends on ~45,000 candles. A one-off backtest of the usual hourly file
# (20,000 candles) is faster without it; a sweep or a long run pays it once and goes ~8x faster.
COMPILE_AFTER = 50_000
_looped = 0          # candles replayed by the loop so far in this process
_kernel_ran = False  # the kernel has run in this process (loaded: no cost left to pay)


def replay_rows(stream: FeatureStream, highs: Any, lows: Any, closes: Any, volumes: Any, *,
                compiled: bool | None = None) -> np.ndarray:
    """The rows `stream.update(highs[i], lows[i], closes[i], volumes[i])` returns, i = 0..n-1, as
    one float64 array of shape (n, n_features), bit for bit (NaN where update gives NaN).

    Advances the stream: afterwards it stands as after the n updates (its states, windows and
    `row`), so a live candle after the replay continues correctly. Raises what `update` raises,
    at the same candle (the stream then stands as update left it). `compiled=False`, or no numba,
    runs the loop over `update` (`replay_rows_python`); `True` the kernel; None (the default)
    the kernel once it has run in this process or once the loop would have replayed
    COMPILE_AFTER candles (the same rows either way)."""
    global _looped, _kernel_ran
    cols = _columns(highs, lows, closes, volumes)
    n = len(cols[0])
    if compiled is None:
        compiled = _kernel_ran or _looped + n >= COMPILE_AFTER
    fn = kernel() if compiled else None
    if fn is None or not _windows_full(stream):
        _looped += n
        return replay_rows_python(stream, *cols)
    _kernel_ran = True
    h, lo, c, v = cols
    out = np.empty((n, len(stream.row)), dtype=np.float64)
    if n == 0:
        return out
    flat = _Flat(stream, n)
    i = 0
    while i < n:
        k = fn(h, lo, c, v, i, n, flat.zs, flat.rets, flat.closes, flat.mfvs, flat.vols, flat.st,
               2.0, stream.n_atr, stream.n_adx, float(stream.bb_k), flat.parts,
               flat.counts, flat.sq, out)
        if k >= n:
            break
        flat.put(stream, k, out)  # the stream as after candles 0..k-1, then update's own step
        _update_loop(stream, h[k:k + 1], lo[k:k + 1], c[k:k + 1], v[k:k + 1], k, out)
        flat.take(stream, k)
        i = k + 1
    flat.put(stream, n, out)
    return out


def _columns(*cols: Any) -> tuple[np.ndarray, ...]:
    arrs = tuple(np.ascontiguousarray(x, dtype=np.float64).reshape(-1) for x in cols)
    if len({len(a) for a in arrs}) != 1:
        raise ValueError(f"highs, lows, closes and volumes must have one length, got "
                         f"{[len(a) for a in arrs]}")
    return arrs


def _update_loop(stream: FeatureStream, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                 v: np.ndarray, at: int, out: np.ndarray) -> None:
    for j, (a, b, x, y) in enumerate(zip(h.tolist(), lo.tolist(), c.tolist(), v.tolist(), strict=True)):
        out[at + j] = stream.update(a, b, x, y)


def _windows_full(stream: FeatureStream) -> bool:
    """The kernel takes windows that are full (a seeded stream's always are)."""
    return all(len(d) == d.maxlen for d in (stream._z, stream._rets, stream._closes, stream._mfv,
                                            stream._vol)) and len(stream._mfv) == len(stream._vol)


class _Flat:
    """The stream's windows laid out flat for the kernel (window then one slot per candle) and
    its recursive states as an array; `put` writes them back into the stream as they stand
    before a candle, `take` reads the candle `update` made."""

    def __init__(self, s: FeatureStream, n: int) -> None:
        self.zs, self.rets, self.closes, self.mfvs, self.vols = (
            np.concatenate([np.asarray(d, dtype=np.float64), np.empty(n)])
            for d in (s._z, s._rets, s._closes, s._mfv, s._vol))
        self.st = np.empty(_N_STATE)
        self._states_from(s)
        cap = 2 * max(len(s._rets), len(s._closes), len(s._vol)) + 8
        self.parts = np.empty((_N_SUMS, cap))
        self.counts = np.zeros(_N_SUMS, dtype=np.int64)
        self.sq = np.empty(len(s._closes) + 1)
        self.n = n

    def _states_from(self, s: FeatureStream) -> None:
        self.st[:] = (s._log_c, *s._emas, s._fast, s._slow, s._signal, s._gain, s._move, s._atr,
                      s._st, s._sp, s._sm, s._adx, *s._prev)

    def put(self, s: FeatureStream, k: int, out: np.ndarray) -> None:
        """The stream as after candles 0..k-1 (whose rows are in `out`)."""
        n = self.n
        if k > 0:
            s.row[:] = out[k - 1]
        for name, a in (("_z", self.zs), ("_rets", self.rets), ("_closes", self.closes),
                        ("_mfv", self.mfvs), ("_vol", self.vols)):
            w = len(a) - n
            setattr(s, name, deque(a[k:k + w].tolist(), maxlen=w))
        s._ret_sums = _exact_sums(s._rets)
        st = self.st.tolist()
        s._log_c = st[_LOG_C]
        s._emas = st[_E21:_E200 + 1]
        s._fast, s._slow, s._signal = st[_MACD_FAST], st[_MACD_SLOW], st[_MACD_SIGNAL]
        s._gain, s._move = st[_GAIN], st[_MOVE]
        s._atr, s._st, s._sp, s._sm, s._adx = st[_ATR:_ADX + 1]
        s._prev = tuple(st[_PH:_PC + 1])

    def take(self, s: FeatureStream, k: int) -> None:
        """Candle k as `update` made it, into the flat windows and the states."""
        n = self.n
        for d, a in ((s._z, self.zs), (s._rets, self.rets), (s._closes, self.closes),
                     (s._mfv, self.mfvs), (s._vol, self.vols)):
            a[len(a) - n + k] = d[-1]
        self._states_from(s)
