"""Soak: the real `python -m bot live` on 1-minute candles against the fake Bybit, under faults
and SIGKILLs, for a given span; then the books are checked against the exchange. Not in CI.

What runs: the fake Bybit V5 server (self_test/fakes/bybit_server.py) on 127.0.0.1 serving real
seed prices as 1-minute candles (self_test/fakes/minute_market.py), with `--faults` of every
private REST call answered by a rate limit (10006 with its reset header), a 10016 or an HTTP 502,
and `--lost` of the order answers dropped after the order was placed. The bot is the command a
user types, `python -m bot live --yes --strategy sma --symbols BTCUSDT,ETHUSDT --interval 1`,
under its supervisor; every `--kill-every` minutes its trading process is SIGKILLed at a random
moment (the supervisor restarts it, and the restart recovers from the journal). `--speed` runs
the wall clock of the fake and of the bot faster (self_test/fakes/fast_clock.py; 1 = real time).
The fake's WebSocket (self_test/fakes/bybit_ws.py) pushes the closed 1-minute candles on the public
kline stream and every order, fill, position and wallet change on the private streams; every
`--drop-every` minutes (at a random moment) it cuts every socket, public and private, without a
close frame: the bot polls REST while they are down, reconnects with backoff, backfills candles
and reads the account over REST until the private stream is back.

At the end the supervisor is stopped (SIGTERM), `python -m bot status --live` resolves what is
left, and it prints: candles processed, orders, duplicated orders, journal vs exchange
differences, positions left without a stop, the longest time from a candle's close to an order on
it, socket drops and the reconnections the bot made.

    .venv/bin/python bench/soak.py --minutes 30                     # 30 minutes, real time
    .venv/bin/python bench/soak.py --minutes 30 --speed 6           # 30 market minutes in 5
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0, help="market minutes to run (default 30)")
    p.add_argument("--speed", type=float, default=1.0, help="clock speed-up (default 1: real time)")
    p.add_argument("--faults", type=float, default=0.2, help="share of private REST calls that fail (default 0.2)")
    p.add_argument("--lost", type=float, default=0.3, help="share of order answers dropped (default 0.3)")
    p.add_argument("--kill-every", type=float, default=5.0, help="market minutes between SIGKILLs (default 5)")
    p.add_argument("--drop-every", type=float, default=3.0,
                   help="market minutes between WebSocket drops, every socket at once (default 3; 0 = none)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"

    from bot.journal.store import Journal
    from self_test.fakes.bybit_server import FakeBybit
    from self_test.fakes.bybit_ws import FakeBybitStream
    from self_test.fakes.fast_clock import FastClock
    from self_test.fakes.minute_market import serve_minutes

    rng = random.Random(args.seed)
    t0 = (int(time.time()) // 60) * 60
    clock = FastClock(t0, args.speed)
    fake = FakeBybit(clock=clock, auth_clock=clock, follow_klines=True)
    span = int(args.minutes) + 5
    # the served stretch of real prices ends 95 candles before the newest seed candle: the minutes
    # to come then hold several SMA(10/30) crossings, so the bot trades during the soak
    serve_minutes(fake, SYMBOLS, end_ms=(t0 + span * 60) * 1000, n=800 + span, back=max(0, 130 - span))
    fake.start()
    ws = FakeBybitStream(fake, auth_clock=clock).start()
    ticking = threading.Event()

    def tick() -> None:            # the kline pushes: what closed since the last tick, every 0.25 s
        while not ticking.wait(0.25):
            ws.tick()

    threading.Thread(target=tick, name="soak-ws-ticks", daemon=True).start()
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    values = {"HISTORICAL_DATA_PATH": str(tmp / "data"), "LOG_FILE": str(tmp / "bot.log"), "BYBIT_BASE_URL": fake.url,
              "BYBIT_WS_URL": ws.url, "BYBIT_WS_PING_SECONDS": "5", "BYBIT_WS_STALL_SECONDS": "15",
              "BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": "testsecret", "BYBIT_TIMEOUT": "3",
              "MARKET_POLL_SECONDS": "0.5", "TELEGRAM_BOT_TOKEN": "", "RESTART_MAX_PER_HOUR": "1000",
              "RESTART_BACKOFF_SECONDS": "1", "RECONCILE_INTERVAL_SECONDS": "60", "TRAINING_ENABLED": "false"}
    env_file = tmp / "soak.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYBIT_", "TELEGRAM_", "CRASH_AT"))}
    env.update(values)
    env.update(clock.env())
    bot = [sys.executable, "-m", "bot", "--env-file", str(env_file)]
    print(f"soak: {args.minutes:g} market minutes at speed {args.speed:g} ({args.minutes / args.speed:.1f} real), "
          f"faults {args.faults:.0%}, lost order answers {args.lost:.0%}, SIGKILL every {args.kill_every:g} min, "
          f"every socket dropped every {args.drop_every:g} min; "
          f"data in {tmp}", flush=True)
    fake.chaos(args.faults, lost=args.lost, seed=args.seed)
    sup = subprocess.Popen([*bot, "live", "--yes", "--override-gate", "--strategy", "sma", "--symbols", ",".join(SYMBOLS),
                            "--interval", "1"], env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    real_span = args.minutes * 60 / args.speed
    start = time.monotonic()
    kills = 0
    next_kill = start + rng.uniform(0.5, 1.0) * args.kill_every * 60 / args.speed
    drops = dropped = 0
    drop_gap = args.drop_every * 60 / args.speed
    next_drop = start + rng.uniform(0.3, 1.0) * drop_gap if args.drop_every > 0 else float("inf")
    while time.monotonic() - start < real_span:
        time.sleep(0.2)
        if sup.poll() is not None:
            print(f"the supervisor ended early with exit code {sup.returncode}", flush=True)
            break
        if time.monotonic() >= next_kill:
            kids = children(sup.pid)
            if kids:
                os.kill(kids[0], signal.SIGKILL)
                kills += 1
            next_kill += args.kill_every * 60 / args.speed * rng.uniform(0.6, 1.4)
        if time.monotonic() >= next_drop:
            n = ws.drop()
            drops += 1
            dropped += n
            next_drop += drop_gap * rng.uniform(0.6, 1.4)
    sup.send_signal(signal.SIGTERM)
    try:
        sup.wait(timeout=120)
    except subprocess.TimeoutExpired:
        sup.kill()
    ticking.set()
    fake.chaos(0.0)
    status = subprocess.run([*bot, "status", "--live"], env=env, cwd=str(ROOT), capture_output=True, text=True,
                            timeout=300)
    ws.stop()
    fake.stop()

    book = fake.book
    links = [o["orderLinkId"] for o in book.orders.values()]
    with Journal(tmp / "data" / "state.db") as j:
        intents = {i.client_order_id: i for i in j.intents(mode="LIVE")}
        closes = len({t for t, _, _ in j.equity_history("LIVE")})   # pushed candles may come a pair at a time
        jpos = {p.symbol: p for p in j.positions("LIVE")}
        fills = {f.exec_id for f in j.fills(mode="LIVE") if f.client_order_id}
        unresolved = j.unresolved_intents()
    duplicated = len(links) - len(set(links))
    diffs: list[str] = []
    for o in book.orders.values():
        i = intents.get(o["orderLinkId"])
        if o["orderLinkId"] and (i is None or i.status != "filled"):
            diffs.append(f"order {o['orderLinkId']} {o['status']} on Bybit, {i.status if i else 'missing'} in the journal")
    for e in book.executions:
        if e["orderLinkId"] and e["execId"] not in fills:
            diffs.append(f"fill {e['execId']} of {e['orderLinkId']} not journaled")
    xpos = {s: p for (s, _), p in book.positions.items() if p["size"]}
    for s in set(xpos) | set(jpos):
        x, jp = xpos.get(s), jpos.get(s)
        if x is None or jp is None or abs(abs(x["size"]) - jp.size) > 1e-9:
            diffs.append(f"position {s}: Bybit {x['size'] if x else 0}, journal {jp.size if jp else 0}")
    diffs += [f"intent {i.client_order_id} still {i.status}" for i in unresolved]
    unprotected = [s for s, x in xpos.items() if not x["sl"]]
    delays = [((o["created"] % 60_000) / 1000.0) / args.speed for o in book.orders.values()
              if o["orderLinkId"].startswith(("open-", "close-"))]
    log = (tmp / "bot.log").read_text(errors="replace")
    print(f"market minutes run: {args.minutes:g}; SIGKILLs: {kills}; supervisor restarts: "
          f"{log.count('restarting in')}")
    print(f"candles processed: {closes * len(SYMBOLS)} ({closes} closes journaled x {len(SYMBOLS)} pairs)")
    print(f"orders on Bybit: {len(links)} ({len(book.executions)} fills); duplicated orders: {duplicated}")
    print(f"journal vs exchange differences: {len(diffs)}" + "".join(f"\n  {d}" for d in diffs[:10]))
    print(f"positions left unprotected (no stop-loss on Bybit): {len(unprotected)} {unprotected or ''}")
    if delays:
        print(f"time from candle close to order (real seconds): max {max(delays):.2f}, "
              f"median {sorted(delays)[len(delays) // 2]:.2f}")
    print(f"faults answered: {sum(1 for _, c in fake.answered if c not in (0, None))} of {len(fake.answered)} requests; "
          f"order answers dropped: {sum(1 for pth, c in fake.answered if pth == '/v5/order/create' and c is None)}")
    print(f"WebSocket drops: {drops} ({dropped} sockets cut); connections the fake accepted: {ws.opened}; "
          f"reconnections after a drop or stall: kline {len(re.findall(r'kline 1 stream connected [(]connection (?:[2-9]|[0-9]{2,})', log))}, "
          f"private {len(re.findall(r'private stream connected [(]connection (?:[2-9]|[0-9]{2,})', log))}; "
          f"private stream back (alerts): {log.count('private stream back')}")
    rest_paths = [pth for _, pth, _ in fake.requests]
    print("REST calls: " + ", ".join(f"{pth} {rest_paths.count(pth)}" for pth in (
        "/v5/market/kline", "/v5/account/wallet-balance", "/v5/position/list", "/v5/order/realtime",
        "/v5/execution/list", "/v5/order/create")))
    print(f"tracebacks on the console of `status --live`: {status.stderr.count('Traceback')}; "
          f"status exit code {status.returncode}")
    ok = duplicated == 0 and not diffs and not unprotected
    print("RESULT:", "ok" if ok else "PROBLEMS")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
