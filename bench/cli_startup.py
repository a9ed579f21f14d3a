"""CLI start-up: how long `python -m bot backtest --strategy sma --no-plot` takes before its first
candle, and which imports it pays for, next to the floor every such command pays (Python + pandas).

"first candle" = the moment the first candle is handed to the loop (`fast_backtest` and
`CandleStep.process_candle` are wrapped in the child process to note the wall clock; with the
default settings (trailing stops on) the backtest takes the engine path), measured from just before the
process is started, on the shipped seed candles. Target: under 0.5 s. The import table comes
from `python -X importtime` of the same command (cumulative microseconds per package, the
largest first; torch, matplotlib, scipy and numba must not appear). The bytecode of bot/ is compiled
first and one launch is not measured, so the figure is that of an installed, warm CLI.

    .venv/bin/python bench/cli_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ["backtest", "--strategy", "sma", "--no-plot"]
HEAVY = ("torch", "matplotlib", "scipy", "numba", "vectorbt")

CHILD = r"""
import sys, time
seen = []
def noting(inner):
    def first(*a, **kw):
        if not seen:
            seen.append(1)
            print("FIRST_CANDLE", time.time(), file=sys.stderr, flush=True)
        return inner(*a, **kw)
    return first
import bot.engine.step as step
import bot.research.fast_path as fp
fp.fast_backtest = noting(fp.fast_backtest)
step.CandleStep.process_candle = noting(step.CandleStep.process_candle)
from bot.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def first_candle(out: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.time()
    done = subprocess.run([sys.executable, "-c", CHILD, *COMMAND, "--out", out], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    mark = re.search(r"FIRST_CANDLE ([0-9.]+)", done.stderr)   # after the progress bar's text
    if mark is None:
        raise SystemExit(f"the backtest never reached a candle:\n{done.stderr[-2000:]}")
    return float(mark.group(1)) - t0


def floor() -> float:
    t0 = time.time()
    subprocess.run([sys.executable, "-c", "import numpy, pandas"], check=True)
    return time.time() - t0


def imports(out: str) -> dict[str, int]:
    """Top-level package -> cumulative import microseconds, from -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "bot", *COMMAND, "--out", out], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    cost: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = (p.strip() for p in line[len("import time:"):].split("|"))
        if not cum.isdigit():
            continue
        top = name.split(".")[0] if not name.startswith("bot.") else ".".join(name.split(".")[:2])
        if name == top:                 # a package's own line carries its cumulative time
            cost[top] = max(cost.get(top, 0), int(cum))
    return cost


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"command: .venv/bin/python bench/cli_startup.py --repeat {args.repeat}   "
          f"(times `python -m bot {' '.join(COMMAND)}`; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs)", flush=True)
    # a warm install, as pip leaves one: every module's bytecode compiled (else the first run of a fresh
    # checkout compiles bot/ and the figure is the compiler's)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "bot"), str(ROOT / "config.py")], check=True)
    with tempfile.TemporaryDirectory() as d:
        first_candle(d)              # one unmeasured run: the OS's file cache, as any second launch finds it
        ours = [first_candle(d) for _ in range(args.repeat)]
        base = [floor() for _ in range(args.repeat)]
        cost = imports(d)
    med, fl = statistics.median(ours), statistics.median(base)
    print(f"launch -> first candle: median {med:.3f} s (min {min(ours):.3f} s) of {args.repeat}; target < 0.5 s: "
          f"{'yes' if med < 0.5 else 'NO'}")
    print(f"floor, `python -c 'import numpy, pandas'`: median {fl:.3f} s; ratio ours / floor {med / fl:.2f}")
    heavy = sorted(k for k in cost if k in HEAVY)
    print("heavy packages imported: " + (", ".join(heavy) if heavy else "none (torch, matplotlib, scipy, numba)"))
    print("largest imports (python -X importtime, cumulative ms):")
    for name, us in sorted(cost.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {name:<28}{us / 1000:>8.1f}")
    return 0 if not heavy else 1


if __name__ == "__main__":
    raise SystemExit(main())
