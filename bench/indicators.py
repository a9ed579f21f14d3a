"""Throughput of bot/analysis/indicators.py against TA-Lib on about a million real candles, same run.

The 20,111 real Coinbase BTC-USD hourly seed candles are tiled end to end until the series
holds --candles candles (the seams are price jumps, which both libraries see alike). Every
indicator of the issue that TA-Lib also has is called once per suite run (SMA, EMA, WMA, RSI,
MACD, Bollinger, ATR, ADX/+DI/-DI, CCI, Williams %R, Stochastic, OBV, ROC, std of log
returns), both libraries interleaved, best of --repeat runs each; the figure that matters is
the suite's throughput ratio ours / TA-Lib (target >= 0.5), in wall-clock time and in CPU time
of this process (steadier when other work shares the machine). Each result
is also checked against TA-Lib (max error scaled as in the tests) so speed never hides a wrong
number.

    .venv/bin/python bench/indicators.py [--candles 1000000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import talib  # noqa: E402  (bench-only peer)

from bot.analysis import indicators as ind  # noqa: E402
from bot.market.seed import load_seed  # noqa: E402


def tiled_candles(n: int) -> dict[str, np.ndarray]:
    seed = load_seed("BTCUSDT", "60")
    reps = -(-n // len(seed))
    return {k: np.ascontiguousarray(np.tile(seed[k].to_numpy(), reps)[:n])
            for k in ("high", "low", "close", "volume")}


def suite(h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray
          ) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    """(name, ours, TA-Lib): one call for every indicator of the issue that TA-Lib also has."""
    lr = np.empty(len(c))
    lr[0] = np.nan
    lr[1:] = np.diff(np.log(c))
    return [
        ("SMA 20", lambda: ind.sma(c, 20), lambda: talib.SMA(c, 20)),
        ("EMA 20", lambda: ind.ema(c, 20), lambda: talib.EMA(c, 20)),
        ("WMA 20", lambda: ind.wma(c, 20), lambda: talib.WMA(c, 20)),
        ("RSI 14", lambda: ind.rsi(c, 14), lambda: talib.RSI(c, 14)),
        ("MACD 12/26/9", lambda: ind.macd(c), lambda: talib.MACD(c, 12, 26, 9)),
        ("BBANDS 20/2", lambda: ind.bbands(c, 20, 2.0),
         lambda: talib.BBANDS(c, 20, 2.0, 2.0, 0)),
        ("ATR 14", lambda: ind.atr(h, lo, c, 14), lambda: talib.ATR(h, lo, c, 14)),
        ("ADX +DI -DI 14", lambda: ind.adx(h, lo, c, 14),
         lambda: (talib.ADX(h, lo, c, 14), talib.PLUS_DI(h, lo, c, 14),
                  talib.MINUS_DI(h, lo, c, 14))),
        ("CCI 20", lambda: ind.cci(h, lo, c, 20), lambda: talib.CCI(h, lo, c, 20)),
        ("WILLR 14", lambda: ind.williams_r(h, lo, c, 14), lambda: talib.WILLR(h, lo, c, 14)),
        ("STOCH 5/3/3", lambda: ind.stochastic(h, lo, c, 5, 3, 3),
         lambda: talib.STOCH(h, lo, c, 5, 3, 0, 3, 0)),
        ("OBV", lambda: ind.obv(c, v), lambda: talib.OBV(c, v)),
        ("ROC 10", lambda: ind.roc(c, 10), lambda: talib.ROC(c, 10)),
        # std of log returns: ours from closes (takes the logs itself), TA-Lib given the returns
        ("STDDEV logret 20", lambda: ind.logret_std(c, 20, ddof=0),
         lambda: talib.STDDEV(lr, 20, 1.0)),
    ]


def scaled_error(ours: object, ref: object) -> float:
    """Largest |ours - ref| / max(|ref|, median |ref|) over all outputs (as in the tests)."""
    outs = ours if isinstance(ours, tuple) else (ours,)
    refs = ref if isinstance(ref, tuple) else (ref,)
    worst = 0.0
    for a, b in zip(outs, refs, strict=True):
        ok = ~np.isnan(b)
        if not np.array_equal(np.isnan(a), ~ok):
            return float("inf")
        scale = np.maximum(np.abs(b[ok]), np.median(np.abs(b[ok])))
        worst = max(worst, float(np.max(np.abs(a[ok] - b[ok]) / scale)))
    return worst


def timed(f: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    f()
    return time.perf_counter() - w0, time.process_time() - c0


def best_of(f: Callable[[], object], repeat: int) -> tuple[float, float]:
    runs = [timed(f) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candles", type=int, default=1_000_000, help="series length (default 1e6)")
    p.add_argument("--repeat", type=int, default=7, help="timed runs per indicator; best counts")
    args = p.parse_args(argv)
    cols = tiled_candles(args.candles)
    n = len(cols["close"])
    rows = suite(cols["high"], cols["low"], cols["close"], cols["volume"])
    print(f"candles: {n:,} = the 20,111 real BTC-USD hourly seed candles tiled "
          f"{n / 20111:.1f}x end to end")
    print(f"TA-Lib {talib.__ta_version__.decode().split()[0]} (python talib {talib.__version__}), "
          f"numpy {np.__version__}; best of {args.repeat}\n")
    print(f"{'':<16}{'--- wall clock, best ---':>36}{'--- CPU time, best ---':>34}")
    print(f"{'indicator':<16}{'ours ms':>9}{'TA-Lib ms':>11}{'ours/TA-Lib':>14}"
          f"{'ours ms':>10}{'TA-Lib ms':>11}{'ours/TA-Lib':>14}{'max err':>10}")
    tot = np.zeros(4)
    worst = 0.0
    for name, ours, ref in rows:
        err = scaled_error(ours(), ref())
        worst = max(worst, err)
        # interleave the two so both see the same machine load
        best = np.full(4, np.inf)
        for _ in range(args.repeat):
            best = np.minimum(best, (*timed(ours), *timed(ref)))
        w_o, c_o, w_r, c_r = best
        tot += best
        print(f"{name:<16}{w_o * 1e3:>9.2f}{w_r * 1e3:>11.2f}{w_r / w_o:>13.2f}x"
              f"{c_o * 1e3:>10.2f}{c_r * 1e3:>11.2f}{c_r / c_o:>13.2f}x{err:>10.1e}")
    w_o, c_o, w_r, c_r = tot
    print(f"{'suite':<16}{w_o * 1e3:>9.2f}{w_r * 1e3:>11.2f}{w_r / w_o:>13.2f}x"
          f"{c_o * 1e3:>10.2f}{c_r * 1e3:>11.2f}{c_r / c_o:>13.2f}x{worst:>10.1e}")
    t_all, c_all = best_of(lambda: ind.compute_all(cols), args.repeat)
    print(f"\nsuite throughput (wall): ours {n / w_o / 1e6:.1f} M candles/s, TA-Lib "
          f"{n / w_r / 1e6:.1f} M candles/s -> ours/TA-Lib = {w_r / w_o:.2f} (target >= 0.5); "
          f"CPU time: {c_r / c_o:.2f}")
    print(f"compute_all (all {len(ind.compute_all({k: v[:300] for k, v in cols.items()}))} keys "
          f"incl. CMF, volume ratio, log-return std): {t_all * 1e3:.1f} ms wall, "
          f"{c_all * 1e3:.1f} ms CPU = {n / c_all / 1e6:.1f} M candles/s")
    print(f"max scaled error vs TA-Lib: {worst:.1e} (promise: <= 1e-9)")
    print("command: " + " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/indicators.py",
                                                           *(argv if argv is not None else sys.argv[1:])]))
    return 0 if worst <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
