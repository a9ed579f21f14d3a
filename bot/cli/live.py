"""Live trading with real money on Bybit, headless.

Needs BYBIT_API_KEY and BYBIT_API_SECRET (in .env or the environment; never on the command line)
and your typed confirmation, which is stored in the journal as your consent (`--yes` confirms
without asking, e.g. for a service). Sizing: POSITION_SIZE_PCT of the real equity per trade
(at least MIN_ORDER_USDT), capped by the risk limits (MAX_RISK_PER_TRADE, MAX_TOTAL_RISK,
DAILY_LOSS_LIMIT, MAX_DRAWDOWN). Runs under the auto-restarting supervisor unless --no-supervisor.
Ctrl-C stops the bot and leaves positions open with their server-side stops unless --close-on-exit.

Exit codes: 0 stopped normally, 1 not confirmed or failed, 2 no keys or bad settings,
3 critical error (the supervisor restarts the bot).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.cli import paper

if TYPE_CHECKING:
    from config import Settings

COMMAND = "live"
HELP = "trade real money on Bybit (needs keys and your typed confirmation)"

CONFIRM_WORD = "LIVE"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="confirm without asking (stores your consent)")
    p.add_argument("--strategy", default=None, help="dqn, analyst or sma (default: STRATEGY setting)")
    p.add_argument("--symbols", default=None, help="comma-separated pairs instead of the hot-pair ranking")
    p.add_argument("--interval", default=None, help="candle interval (default: CANDLE_INTERVAL)")
    p.add_argument("--candles", type=int, default=0, help="stop after N candles (default: run until stopped)")
    p.add_argument("--close-on-exit", action="store_true", help="market-close all positions when stopping")
    p.add_argument("--no-training", action="store_true", help="do not learn online")
    p.add_argument("--no-supervisor", action="store_true", help="run in this process (the supervisor's child uses it)")
    p.add_argument("--override-gate", action="store_true",
                   help="with --yes: trade live although the promotion gate has not passed (journaled as an override)")
    p.set_defaults(replay=False, pace=None)   # paper's options that live never takes (paper.run_engine reads them)


def confirm(settings: Settings, *, ask: Callable[[str], str] = input) -> bool:
    """Show what is at risk and ask for the typed word; True when the user typed it."""
    from bot.errors import BotError
    from bot.exchange.bybit import BybitExchange

    try:
        bal = BybitExchange(settings).get_balance()
        at_risk = f"equity {bal.equity:,.2f} {bal.coin} (available {bal.available:,.2f})"
    except BotError as exc:
        at_risk = f"balance unknown ({exc})"
    s = settings
    where = (" TESTNET" if s.USE_TESTNET else "") + (" DEMO TRADING (play money)" if s.BYBIT_DEMO else "")
    print(f"LIVE TRADING on Bybit {s.EXCHANGE_CATEGORY}{where}: {at_risk}.\n"
          f"Each trade uses {s.POSITION_SIZE_PCT:.0%} of equity (at least {s.MIN_ORDER_USDT:g} USDT), at most "
          f"{s.MAX_RISK_PER_TRADE:.0%} of equity at risk per trade and {s.MAX_TOTAL_RISK:.0%} across positions; "
          f"new entries stop after a {s.DAILY_LOSS_LIMIT:.0%} daily loss or a {s.MAX_DRAWDOWN:.0%} drawdown.")
    answer = ask(f"Type {CONFIRM_WORD} to trade real money: ")
    return answer.strip() == CONFIRM_WORD


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.engine.trading_engine import TradingEngine

    if not settings.has_bybit_keys:
        print("live trading needs BYBIT_API_KEY and BYBIT_API_SECRET in .env or the environment; "
              "refusing to start", file=sys.stderr)
        return 2
    if (args.strategy or settings.STRATEGY) == "dqn":
        from bot.safety.live_gate import dqn_live_refusal

        why = dqn_live_refusal(settings)
        if why:   # no untrained (or unproven) agent with real money; sma and analyst need no gate
            print(why, file=sys.stderr)
            return 1
    if not args.yes:
        if not sys.stdin.isatty() and not args.no_supervisor:
            print("no terminal to confirm on: run interactively, or pass --yes", file=sys.stderr)
            return 1
        if not confirm(settings):
            print("not confirmed; nothing was traded")
            return 1
    unmet = _gate_unmet(args, settings)
    if unmet is None:
        return 1
    consent = TradingEngine(settings)
    consent.give_live_consent(gate_unmet=unmet)   # journaled: the engine refuses LIVE without it
    consent.close()
    if not args.no_supervisor:
        try:
            from bot.safety.supervisor import supervise
        except ImportError:
            supervise = None
        if supervise is not None:
            argv = [a for a in sys.argv[1:]] + ([] if args.yes else ["--yes"]) + (
                ["--override-gate"] if unmet and not args.override_gate else [])
            return int(supervise(argv, settings))
    return paper.run_engine(args, settings, mode="LIVE")


def _gate_unmet(args: argparse.Namespace, settings: Settings, *,
                ask: Callable[[str], str] = input) -> tuple[str, ...] | None:
    """The promotion gate's checklist on the paper record; the unmet criteria the user overrode
    (typed, or --override-gate with --yes), () when it passed, None when not overridden."""
    from bot.engine.promotion import (
        GATE_OVERRIDE_WORD,
        gate_checklist,
        override_request,
        paper_record_gate,
    )

    gate = paper_record_gate(settings)
    print(f"Promotion gate (the paper record):\n{gate_checklist(gate)}")
    if gate.passed:
        return ()
    if args.yes:
        if args.override_gate:
            print(f"promotion gate overridden by --override-gate (unmet: {', '.join(gate.missing)})")
            return tuple(gate.missing)
        print(f"the promotion gate has not passed (unmet: {', '.join(gate.missing)}); add --override-gate to "
              "trade live anyway", file=sys.stderr)
        return None
    if ask(override_request(gate) + "\n> ").strip() != GATE_OVERRIDE_WORD:
        print("gate not overridden; nothing was traded")
        return None
    return tuple(gate.missing)
