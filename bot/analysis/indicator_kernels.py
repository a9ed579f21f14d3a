"""Numeric kernels behind bot/analysis/indicators.py: window sums, window extremes, rolling variance and
first-order recursions over long numpy arrays, without a Python loop over candles.

Why these exist: a numpy pass costs ~0.2 ms per million values but a fresh 8 MB temporary
costs ~1 ms in page faults, and `lfilter`'s serial loop ~4 ms. The kernels keep passes to
about log2(window), reuse their outputs as work space, and run recursions as small matrix
products per block of 16 values chained by a short first-order recursion over the blocks.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["window_sums", "window_extreme", "rolling_var", "weighted_window_sums", "recursive"]


def window_sums(x: np.ndarray, n: int, out: np.ndarray | None = None,
                scratch: np.ndarray | None = None) -> np.ndarray:
    """Sums over every window of n along the last axis (valid mode: length L-n+1).

    A window of n is cut into the power-of-two pieces of n's binary digits; the pieces come
    from repeated pairwise doubling (sums of 2, 4, 8, ...), so a window costs about log2(n)
    passes instead of n, the summation is pairwise (accurate), and its order is fixed: a window
    gives the same bits however much history precedes it. The doublings ping-pong between two
    buffers (an in-place overlapping add would make numpy copy); `scratch` of shape
    (2,) + x.shape, any content, saves allocating them.
    """
    L = x.shape[-1]
    m = L - n + 1
    if out is None:
        out = np.empty(x.shape[:-1] + (max(m, 0),))
    if m <= 0:
        return out
    piece, size, offset, first = x, 1, 0, True
    bufs = scratch
    for k in range(n.bit_length()):
        if n >> k & 1:
            if first:
                np.copyto(out, piece[..., offset:offset + m])
                first = False
            else:
                out += piece[..., offset:offset + m]
            offset += size
        if n >> (k + 1) == 0:
            break
        if bufs is None:
            bufs = np.empty((2,) + x.shape)
        nxt = bufs[k % 2][..., : piece.shape[-1] - size]
        np.add(piece[..., :-size], piece[..., size:], out=nxt)
        piece = nxt
        size *= 2
    return out


def window_extreme(x: np.ndarray, n: int, op: Any, out: np.ndarray | None = None) -> np.ndarray:
    """Running extreme (op = np.maximum or np.minimum) over windows of n, valid mode.

    Extremes may overlap, so a window is two overlapping power-of-two pieces: log2(n) passes.
    """
    m = len(x) - n + 1
    if out is None:
        out = np.empty(max(m, 0))
    if m <= 0:
        return out
    piece, size = x, 1
    while 2 * size <= n:
        if piece is x:
            piece = op(x[:-1], x[1:])
        else:
            op(piece[:-size], piece[size:], out=piece[:-size])
        size *= 2
    if size == n:
        np.copyto(out, piece[:m])
    else:
        op(piece[:m], piece[n - size:n - size + m], out=out)
    return out


_VAR_ROW = 256     # windows per anchored row in _rolling_var
_VAR_ROWS = 256    # rows per chunk: the chunk's temporaries stay in cache
_TWO_PASS_MAX = 8  # windows up to this length take the exact two-pass variance


def rolling_var(x: np.ndarray, n: int, ddof: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Variance over each trailing window of n, full length, NaN for the first n-1.

    Sums of squared prices cancel catastrophically (a variance is ~1e-6 of a squared BTC price,
    and 0 in a flat stretch), so the windows are taken in rows of 256, each row relative to its
    own first value before squaring. A chunk of rows is laid end to end and summed as one flat
    series (the windows that straddle two rows are computed and dropped: 7 % extra work, 3x
    faster than summing along short rows); chunks are cache-sized.
    """
    x = np.ascontiguousarray(x)            # the row views below assume unit stride
    N = len(x)
    out = np.empty(N) if out is None else out
    m = N - n + 1
    out[: min(n - 1, N)] = np.nan
    if m <= 0:
        return out
    b = _VAR_ROW
    width = b + n - 1
    nb = -(-m // b)                        # rows; the last one may be short
    rows_per = min(_VAR_ROWS, nb)
    flat = rows_per * width
    s1b, s2b, bufs = np.empty(flat), np.empty(flat), np.empty((2, flat))
    res = out[n - 1:]
    if n <= _TWO_PASS_MAX:
        # Short windows: the textbook two-pass sum of squared deviations from the window mean,
        # exact to rounding even for a calm window beside a crash (anchoring only bounds the
        # error by the row's range); n passes are cheap when n is small.
        mean = window_sums(x, n) / n
        tmp = np.empty(m)
        res.fill(0.0)
        for k in range(n):  # loop over the window's offsets, not over candles
            np.subtract(x[k:k + m], mean, out=tmp)
            tmp *= tmp
            res += tmp
        res /= n - ddof
        return out
    full = m // b
    for r0 in range(0, nb, rows_per):      # chunks of rows, each handled by array operations
        r1 = min(nb, r0 + rows_per)
        if r1 > full:                      # the short last row: pad it with its last value
            tail = np.full(width, x[-1])
            tail[: N - full * b] = x[full * b:]
            rows = np.vstack([as_strided(x[r0 * b:], shape=(full - r0, width),
                                         strides=(b * 8, 8), writeable=False), tail[None]])
        else:
            rows = as_strided(x[r0 * b:], shape=(r1 - r0, width), strides=(b * 8, 8),
                              writeable=False)
        g = r1 - r0
        d = (rows - rows[:, :1]).reshape(-1)
        L = g * width
        window_sums(d, n, out=s1b[:L - n + 1], scratch=bufs[:, :L])
        np.multiply(d, d, out=d)
        window_sums(d, n, out=s2b[:L - n + 1], scratch=bufs[:, :L])
        s1 = s1b[:L].reshape(g, width)[:, :b]
        s2 = s2b[:L].reshape(g, width)[:, :b]
        k = min(r1 * b, m) - r0 * b
        var = res[r0 * b:r0 * b + k]
        if k == g * b:
            var2 = var.reshape(g, b)
            np.multiply(s1, s1, out=var2)
            var2 /= -n
            var2 += s2
        else:
            var[:] = (s2 - s1 * s1 / n).reshape(-1)[:k]
    res /= n - ddof
    np.maximum(res, 0.0, out=res)
    return out


_WMA_STEP = 8192   # windows per chunk in weighted_window_sums


def weighted_window_sums(x: np.ndarray, n: int, out: np.ndarray) -> np.ndarray:
    """Sums of x weighted 1..n (oldest to newest) over every window of n, into `out` (valid mode).

    Within a chunk of windows, sum(w x) = sum(i x) - j sum(x) for the window starting at chunk
    position j, i being the position in the chunk: two window sums instead of an n-tap
    convolution. Chunks are short enough that the subtraction loses at most ~4e-13 relative
    (j / n eps), and they stay in cache.
    """
    m = len(x) - n + 1
    if m <= 0:
        return out
    step = _WMA_STEP
    idx = np.arange(1.0, step + n)
    offsets = idx[:step] - 1.0
    weighted, s = np.empty(step + n - 1), np.empty(step)
    bufs = np.empty((2, step + n - 1))
    for i in range(0, m, step):  # chunks of windows, each handled by whole-array operations
        k = min(step, m - i)
        xs = x[i:i + k + n - 1]
        res = window_sums(np.multiply(xs, idx[:k + n - 1], out=weighted[:k + n - 1]), n,
                          out=out[i:i + k], scratch=bufs[:, :k + n - 1])
        part = window_sums(xs, n, out=s[:k], scratch=bufs[:, :k + n - 1])
        part *= offsets[:k]
        res -= part
    return out


_BLOCK = 16
_CHUNK = 1024  # blocks per matrix product: m*n*k = 262144 is OpenBLAS's single-thread limit,
# and its worker threads, once woken, stall for milliseconds on a loaded machine
_SHORT_CHAIN = 4096  # a chain this long or shorter runs in Python: importing scipy.signal costs ~0.5 s


def _chain(x: np.ndarray, a: float, b: float, zi: np.ndarray) -> np.ndarray:
    """y[t] = a*y[t-1] + b*x[t] along the last axis of 2-D `x`, y[-1] given as `zi` = a*y[-1]
    per row: `lfilter([b], [1, -a], x, axis=1, zi=zi)[0]`, bit for bit (its loop computes
    y = z + b*x, then z = a*y). Short chains (the block ends of a few thousand candles, a tail
    under one block) run in Python so a command that never filters a long series does not import
    scipy.signal; long ones take lfilter."""
    if x.shape[-1] > _SHORT_CHAIN:
        from scipy.signal import lfilter
        return np.asarray(lfilter([b], [1.0, -a], x, axis=-1, zi=np.reshape(zi, (len(x), 1)))[0])
    out = np.empty(x.shape)
    for r, (row, z) in enumerate(zip(x.tolist(), np.asarray(zi, dtype=np.float64).reshape(-1).tolist(),
                                     strict=True)):
        ys = []
        for v in row:
            y = z + b * v
            ys.append(y)
            z = a * y
        out[r] = ys
    return out


@functools.lru_cache(maxsize=64)
def _block_kernel(a: float, b: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Matrices that run y[t] = a*y[t-1] + b*x[t] over a block of _BLOCK from a zero start."""
    i = np.arange(_BLOCK)
    lag = i[None, :] - i[:, None]
    kernel = np.where(lag >= 0, b * np.power(a, np.maximum(lag, 0)), 0.0)
    return kernel, np.power(a, i + 1.0), a ** _BLOCK


def recursive(x: np.ndarray, seed: Any, a: float, b: float,
               out: np.ndarray | None = None) -> np.ndarray:
    """y[0] = seed; y[t] = a*y[t-1] + b*x[t] for t >= 1 (x[0] is ignored), along the last axis.

    `x` may be 2-D (several series with the same a, b; `seed` one per row); `out` may be `x`
    itself. Long inputs run block-wise: each block of 16 is one row of a matrix product from a
    zero start, the block ends are chained by one first-order recursion over the blocks
    (`_chain`), and each block then adds its carried-in state times a**(i+1). Same numbers as lfilter (1e-15 relative),
    faster than its strictly serial loop. Non-finite inputs take lfilter, which keeps NaN causal.
    """
    x2 = x.reshape(-1, x.shape[-1])
    rows, N = x2.shape
    seeds = np.array(np.broadcast_to(np.asarray(seed, dtype=np.float64), (rows,)))
    y = np.empty_like(x2) if out is None else out.reshape(rows, N)
    k = 0
    if N > 4 * _BLOCK and np.isfinite(np.sum(x2[:, 1:])):
        nb = (N - 1) // _BLOCK
        k = nb * _BLOCK
        kernel, powers, a_block = _block_kernel(a, b)
        for r in range(rows):  # a handful of series; inside, chunks of blocks
            xb = x2[r, 1:1 + k].reshape(nb, _BLOCK)
            yb = y[r, 1:1 + k].reshape(nb, _BLOCK)
            for i in range(0, nb, _CHUNK):
                np.matmul(xb[i:i + _CHUNK], kernel, out=yb[i:i + _CHUNK])
            carry = np.empty(nb)
            carry[0] = seeds[r]
            if nb > 1:
                carry[1:] = _chain(yb[None, :-1, -1], a_block, 1.0, np.array([a_block * seeds[r]]))[0]
            for i in range(0, nb, 4 * _CHUNK):
                yb[i:i + 4 * _CHUNK] += carry[i:i + 4 * _CHUNK, None] * powers
    y[:, 0] = seeds
    if k + 1 < N:
        y[:, k + 1:] = _chain(x2[:, k + 1:], a, b, a * y[:, k:k + 1])
    return y.reshape(x.shape)
