"""Journal write latency per order: our SQLite journal vs a plain SQLite table with SQLite's defaults.

    .venv/bin/python bench/journal.py [--orders 300]

Per order the executor writes: the intent (fsynced: it must exist before the exchange hears of
the order), "sent", the exchange's answer, and one fill. The peer is what a bot gets from
SQLite's defaults (rollback journal, synchronous=FULL, a commit per statement). Prints p50/p99
in milliseconds for both and the ratio, in the same run, on the same disk.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.journal.store import Journal  # noqa: E402
from bot.types import Fill, OrderIntent, OrderStatus  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def ours(folder: Path, n: int) -> tuple[list[float], list[float]]:
    j = Journal(folder / "state.db")
    before, after = [], []
    for i in range(n):
        cid = f"bench-{i}"
        t = time.perf_counter()
        j.record_intent(OrderIntent(cid, "BTCUSDT", "Buy", 0.01))
        j.update_intent(cid, OrderStatus.SENT)
        before.append(time.perf_counter() - t)
        t = time.perf_counter()
        j.update_intent(cid, OrderStatus.FILLED, exchange_order_id=f"x{i}")
        j.record_fill(Fill(cid, "BTCUSDT", "Buy", 0.01, 8035.88, 0.044, i, exec_id=f"e{i}"), mode="PAPER")
        after.append(time.perf_counter() - t)
    j.close()
    return before, after


def peer(folder: Path, n: int) -> tuple[list[float], list[float]]:
    c = sqlite3.connect(folder / "plain.db")  # SQLite defaults: rollback journal, synchronous=FULL
    c.execute("CREATE TABLE intents (cid TEXT PRIMARY KEY, symbol TEXT, side TEXT, qty REAL, status TEXT, xid TEXT)")
    c.execute("CREATE TABLE fills (cid TEXT, exec_id TEXT, qty REAL, price REAL, fee REAL, time_ms INTEGER)")
    before, after = [], []
    for i in range(n):
        cid = f"bench-{i}"
        t = time.perf_counter()
        c.execute("INSERT INTO intents VALUES (?,?,?,?,?,?)", (cid, "BTCUSDT", "Buy", 0.01, "pending", ""))
        c.commit()
        c.execute("UPDATE intents SET status='sent' WHERE cid=?", (cid,))
        c.commit()
        before.append(time.perf_counter() - t)
        t = time.perf_counter()
        c.execute("UPDATE intents SET status='filled', xid=? WHERE cid=?", (f"x{i}", cid))
        c.commit()
        c.execute("INSERT INTO fills VALUES (?,?,?,?,?,?)", (cid, f"e{i}", 0.01, 8035.88, 0.044, i))
        c.commit()
        after.append(time.perf_counter() - t)
    c.close()
    return before, after


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent) as tmp:
        o_before, o_after = ours(Path(tmp), args.orders)
        p_before, p_after = peer(Path(tmp), args.orders)
    print(f"command: .venv/bin/python bench/journal.py --orders {args.orders}")
    print(f"{'writes per order':<34} {'ours p50':>9} {'ours p99':>9} {'peer p50':>9} {'peer p99':>9} {'p50 ratio':>10}")
    for name, o, p in (("intent + sent (before the send)", o_before, p_before),
                       ("filled + fill (after the answer)", o_after, p_after)):
        print(f"{name:<34} {pct(o, .5):9.3f} {pct(o, .99):9.3f} {pct(p, .5):9.3f} {pct(p, .99):9.3f} "
              f"{pct(p, .5) / max(pct(o, .5), 1e-9):9.1f}x")
    print("milliseconds; ratio = peer / ours (higher: ours is faster)")


if __name__ == "__main__":
    main()
