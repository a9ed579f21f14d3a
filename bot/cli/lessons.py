"""Lessons learned from the journal: show them, learn new ones, switch them off or on.

A lesson is a short dated finding ("short pullbacks in a choppy regime: 12% win rate ... over 24
trades; require ADX > 25 and confidence >= 55") with a rule that tightens the analyst for that
regime x setup x side within the config bounds, and a line in the LLM reviewers' prompt.
`--refresh` reads the closed trades and reviews of the journal (vetoed proposals are replayed
over the recorded candles) and stores what is new. `--off ID` / `--on ID` reverse one.

Examples:
  python -m bot lessons
  python -m bot lessons --refresh
  python -m bot lessons --replay --refresh    (the journal of offline replay sessions)
  python -m bot lessons --off 3
"""

from __future__ import annotations

import argparse
from typing import Any

COMMAND = "lessons"
HELP = "lessons learned from the journal: list, --refresh, --off ID, --on ID"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--refresh", action="store_true", help="learn new lessons from the journal's trades and vetoes")
    p.add_argument("--replay", action="store_true",
                   help="the journal of replayed (offline) paper sessions, replay_state.db, instead of state.db")
    p.add_argument("--all", action="store_true", help="also list lessons that are switched off")
    p.add_argument("--off", type=int, metavar="ID", help="switch lesson ID off (the analyst forgets its rule)")
    p.add_argument("--on", type=int, metavar="ID", help="switch lesson ID back on")


def run(args: argparse.Namespace, settings: Any) -> int:
    from bot.errors import BotError
    from bot.journal.store import Journal
    from bot.market.data_manager import DataManager
    from bot.strategies.lessons import lessons_text, parse_lessons, refresh_lessons

    journal = Journal.for_settings(settings, name="replay_state.db" if args.replay else "state.db")
    try:
        if args.off is not None:
            journal.set_lesson_active(args.off, False)
            print(f"lesson #{args.off} switched off")
        if args.on is not None:
            journal.set_lesson_active(args.on, True)
            print(f"lesson #{args.on} switched on")
        if args.refresh:
            symbols = {r["symbol"] for r in journal.reviews(n=10_000_000)}
            candles = {}
            for sym in sorted(symbols):
                try:
                    candles[sym] = DataManager(settings).candles(sym, settings.CANDLE_INTERVAL)
                except BotError as exc:
                    print(f"{sym}: no recorded candles for the vetoed proposals ({exc})")
            new = refresh_lessons(journal, settings, candles=candles)
            print(f"{len(new)} new lesson(s) from {len(journal.closed_trades())} closed trade(s)")
        rows = lessons_text(parse_lessons(journal.lessons(active_only=not args.all)), include_inactive=args.all)
        print("\n".join(rows) if rows else "no lessons yet (they need LESSON_MIN_SAMPLES trades of one pattern)")
    finally:
        journal.close()
    return 0
