"""Paper trading, headless: the trading engine with the paper wallet.

Market data comes from Bybit's public endpoints (no keys); when Bybit cannot be reached the
engine says so and replays recorded real candles instead, labelled REPLAY in every line about
market data. Trades, stops and vetoes appear in the log and the journal (historical_data/state.db).
Ctrl-C stops the bot and leaves positions open (with their stops) unless --close-on-exit.

Exit codes: 0 stopped normally, 1 failed, 2 bad usage or settings, 3 critical error (the
supervisor restarts the bot).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config import Settings

COMMAND = "paper"
HELP = "run the bot with the paper wallet (Bybit data, or replayed real candles when offline)"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CRITICAL = 0, 1, 2, 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategy", default=None, help="dqn, analyst or sma (default: STRATEGY setting)")
    p.add_argument("--symbols", default=None, help="comma-separated pairs to trade instead of the hot-pair ranking "
                                                   "(e.g. BTCUSDT,ETHUSDT)")
    p.add_argument("--interval", default=None, help="candle interval (default: CANDLE_INTERVAL)")
    p.add_argument("--replay", action="store_true", help="do not try Bybit: replay recorded real candles")
    p.add_argument("--pace", type=float, default=None,
                   help="seconds between replayed candles (default: REPLAY_CANDLE_SECONDS)")
    p.add_argument("--candles", type=int, default=0, help="stop after N candles (default: run until stopped)")
    p.add_argument("--close-on-exit", action="store_true", help="market-close all positions when stopping")
    p.add_argument("--no-training", action="store_true", help="do not learn online (the agent only acts)")
    p.add_argument("--no-supervisor", action="store_true",
                   help="run in this process without the auto-restarting supervisor (the supervisor's child uses it)")


def settings_for(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings this run trades with: --interval, --pace and --no-training applied (the
    --symbols go to the app assembly, which pins the pairs)."""
    changes: dict[str, object] = {}
    if args.interval:
        changes["CANDLE_INTERVAL"] = args.interval
    if args.pace is not None:
        changes["REPLAY_CANDLE_SECONDS"] = args.pace
    if args.no_training:
        changes["TRAINING_ENABLED"] = False
    return settings.replace(**changes) if changes else settings


def run_engine(args: argparse.Namespace, settings: Settings, *, mode: str) -> int:
    """Run the bot in `mode` until Ctrl-C, SIGTERM, --candles, or the end of a replay."""
    from bot.engine.app import assemble
    from bot.engine.snapshot import EngineStatus

    log = logging.getLogger(f"bot.{mode.lower()}")
    symbols = tuple(s for s in (args.symbols or "").split(",") if s.strip())
    app = assemble(settings_for(args, settings), strategy=args.strategy, symbols=symbols,
                   force_replay=bool(args.replay))
    engine = app.engine
    done = threading.Event()
    if app.settings.DASHBOARD_ENABLED:   # the web dashboard on this engine (bot/dashboard/); shutdown stops it
        from bot.dashboard.server import start_dashboard

        start_dashboard(app)

    signalled: list[int] = []

    def _on_signal(signum: int, _frame: object) -> None:
        # No logging here: a handler runs between two bytecodes of the main thread, maybe in the
        # middle of its own log line, and a second write to the same stream then fails ("reentrant
        # call", printed as a logging error on Ctrl-C, when the supervisor's SIGTERM follows the
        # terminal's SIGINT). The loop below says it.
        signalled.append(signum)
        done.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
    app.start(mode)
    try:
        while engine.running and not done.wait(0.5):
            if args.candles and engine.candles_processed >= args.candles:
                log.info("%d candles processed: stopping as asked (--candles)", engine.candles_processed)
                break
    except KeyboardInterrupt:
        log.warning("interrupted: stopping")
    if signalled:
        log.warning("signal %d: stopping", signalled[0])
    app.shutdown(close_positions=args.close_on_exit)
    snap = engine.snapshot()
    log.info("%s session over: equity %.2f USDT, %d open position(s), %d closed trade(s) this session, %s data",
             mode, snap.equity, len(snap.positions), engine.state.session.trades, snap.data_source)
    if snap.status == EngineStatus.ERROR:
        return EXIT_CRITICAL
    return EXIT_OK


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not args.no_supervisor:
        import sys

        from bot.safety.supervisor import supervise

        # The same command line runs again as the child (with --no-supervisor), restarted after
        # a critical exit (code 3) with backoff and an hourly cap.
        return int(supervise(sys.argv[1:], settings))
    return run_engine(args, settings, mode="PAPER")
