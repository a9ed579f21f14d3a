"""Time per candle of `replay_rows` (the compiled replay) against the loop over
`FeatureStream.update` it replaces, on real candles, same run; and the kernel's compile time.

An internal comparison, no peer library: the replay exists to do what the update loop does,
bit for bit, faster, so the update loop is the peer. The stream is seeded as DQNStrategy seeds
it (the FEATURE_HISTORY candles before the stretch) from the real Coinbase BTC-USD hourly seed
candles; both then take the --candles that follow (best of --repeat runs each, each on a fresh
copy of the seeded stream), and the rows are checked equal to the bit so speed never hides a
wrong number. The compile time is measured in a child process with an empty numba cache
(NUMBA_CACHE_DIR in a temporary directory): its first replay (numba's import plus compiling
the kernel) minus its second; then a second child with that cache filled (loading it).

    .venv/bin/python bench/feature_replay.py [--candles 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.analysis.feature_replay import kernel, replay_rows  # noqa: E402
from bot.analysis.feature_stream import FeatureStream  # noqa: E402
from bot.market.seed import load_seed  # noqa: E402
from bot.strategies.dqn import FEATURE_HISTORY  # noqa: E402

_FIRST_CALL = """
import time
t0 = time.perf_counter()
import copy
from bot.analysis.feature_replay import replay_rows
from bot.analysis.feature_stream import FeatureStream
from bot.market.seed import load_seed
f = load_seed("BTCUSDT", "60")
s = FeatureStream(f.iloc[:2000])
h, lo, c, v = (f[k].to_numpy()[2000:2100] for k in ("high", "low", "close", "volume"))
t1 = time.perf_counter()
replay_rows(copy.deepcopy(s), h, lo, c, v, compiled=True)
t2 = time.perf_counter()
replay_rows(copy.deepcopy(s), h, lo, c, v, compiled=True)
t3 = time.perf_counter()
print((t2 - t1) - (t3 - t2))
"""


def first_call_seconds(cache_dir: str) -> float:
    """Seconds the first replay costs more than the second, in a fresh process whose numba
    cache is `cache_dir`."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1])


def best_of(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("$ .venv/bin/python bench/feature_replay.py " + shlex.join(sys.argv[1:]))
    if kernel() is None:
        sys.exit("numba is not installed: replay_rows is the update loop, nothing to compare")
    frame = load_seed("BTCUSDT", "60")
    n = min(args.candles, len(frame) - FEATURE_HISTORY)
    seeded = FeatureStream(frame.iloc[:FEATURE_HISTORY])
    h, lo, c, v = (np.ascontiguousarray(frame[k].to_numpy()[FEATURE_HISTORY:FEATURE_HISTORY + n])
                   for k in ("high", "low", "close", "volume"))
    rows = replay_rows(copy.deepcopy(seeded), h, lo, c, v, compiled=True)   # compiled (or loaded) here
    hl, ll, cl, vl = h.tolist(), lo.tolist(), c.tolist(), v.tolist()

    def loop() -> np.ndarray:
        s = copy.deepcopy(seeded)
        return np.array([s.update(hl[i], ll[i], cl[i], vl[i]).copy() for i in range(n)])

    want = loop()
    if rows.tobytes() != want.tobytes():
        sys.exit("replay_rows differs from the update loop: not timing a wrong answer")
    # the deep copy of the seeded stream is paid by both (tens of microseconds, once)
    t_replay = best_of(args.repeat, lambda: replay_rows(copy.deepcopy(seeded), h, lo, c, v, compiled=True))
    t_loop = best_of(args.repeat, loop)
    print(f"{n:,} real BTC hourly candles after a {FEATURE_HISTORY:,}-candle seed, best of {args.repeat}")
    print(f"  update loop   {t_loop / n * 1e6:8.3f} us/candle  ({t_loop * 1e3:.1f} ms)")
    print(f"  replay_rows   {t_replay / n * 1e6:8.3f} us/candle  ({t_replay * 1e3:.1f} ms)"
          f"  = {t_loop / t_replay:.1f}x the loop")
    with tempfile.TemporaryDirectory() as tmp:
        cold = first_call_seconds(tmp)
        warm = first_call_seconds(tmp)
    print(f"  first call, empty numba cache (import numba + compile): {cold:.2f} s")
    print(f"  first call, cache filled (import numba + load):        {warm:.2f} s")


if __name__ == "__main__":
    main()
