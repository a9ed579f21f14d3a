"""The analyst with and without the rule review pipeline, on the engine path, after fees.

The engine reviews the analyst's proposals itself (`python -m bot backtest --strategy analyst`
includes the rule reviews). This script runs the analyst twice on the same real BTC hourly seed
span through the same engine backtest: once wrapped with a pipeline that approves everything, and
once as `ReviewedStrategy(analyst, ReviewPipeline(settings, journal=...))`, reviewed into a journal
this script can count. A `ReviewedStrategy` says it is reviewed already (`proposes_for_review` is
False), so the engine reviews neither a second time. One table, buy-and-hold next to it.

    .venv/bin/python bench/analyst_reviews.py --start 2019-01-01 --end 2019-10-18
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _NoReview:
    """A pipeline that approves everything (the strategy's own decisions, unreviewed)."""

    def review(self, proposal, context):  # noqa: ANN001, ANN201
        from bot.strategies.reviewers import ReviewOutcome

        return ReviewOutcome(approved=True, decision=proposal, reviewed=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--start", default="2019-01-01", help="first traded candle (UTC)")
    p.add_argument("--end", default="2019-10-18", help="end, exclusive (UTC)")
    args = p.parse_args(argv)

    import logging

    from bot.cli.backtest import load_frame
    from bot.journal.store import Journal
    from bot.research.backtest import run_backtest
    from bot.research.fast_path import costs_for
    from bot.research.report import build_report
    from bot.strategies.analyst import AnalystStrategy
    from bot.strategies.review import ReviewedStrategy, ReviewPipeline
    from config import load_settings

    logging.getLogger("bot").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, environ={}, HISTORICAL_DATA_PATH=tmp)
        frame, first = load_frame(settings, "BTCUSDT", "60", data=None, start=args.start, end=args.end)
        journal = Journal(Path(tmp) / "reviews.db")
        rows = []
        bare = ReviewedStrategy(AnalystStrategy(settings), _NoReview())
        reviewed = ReviewedStrategy(AnalystStrategy(settings), ReviewPipeline(settings, journal=journal))
        bare.name, reviewed.name = "analyst-unreviewed", "analyst-reviewed"   # the report's labels
        for label, strategy in (("analyst, no reviews", bare), ("analyst + rule reviews", reviewed)):
            t0 = time.perf_counter()
            res = run_backtest(settings, strategy, frame, symbol="BTCUSDT", interval="60", path="engine",
                               start=first)
            m = build_report(res, costs_for(settings, "BTCUSDT", frame)).metrics
            rows.append((label, m, time.perf_counter() - t0))
        reviews = journal.reviews(n=10_000_000)
        vetoes = [r for r in reviews if r["verdict"] == "veto"]
        journal.close()
    m0 = rows[0][1]
    print(f"command: .venv/bin/python bench/analyst_reviews.py --start {args.start} --end {args.end}")
    print(f"period: {m0['start']} .. {m0['end']} ({m0['candles']} hourly candles, BTCUSDT seed), after fees\n")
    print("| strategy | return % | Sharpe | max DD % | trades | win % | profit factor | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for label, m, secs in rows:
        print(f"| {label} | {m['return_pct']:+.2f} | {m['sharpe']:.2f} | {m['max_drawdown_pct']:.2f} | {m['trades']} "
              f"| {m['win_rate_pct']:.1f} | {m['profit_factor']:.2f} | {secs:.0f} |")
    print(f"| buy-and-hold | {m0['buy_hold_return_pct']:+.2f} | {m0['buy_hold_sharpe']:.2f} | "
          f"{m0['buy_hold_max_drawdown_pct']:.2f} | 1 | | | |")
    by_reason: dict[str, int] = {}
    for v in vetoes:
        key = v["reason"].split(":")[0] if v["stage"] == "risk" else v["reason"][:40]
        by_reason[f"{v['stage']}: {key}"] = by_reason.get(f"{v['stage']}: {key}", 0) + 1
    print(f"\nreviews journaled: {len(reviews)}, vetoes: {len(vetoes)}")
    for reason, n in sorted(by_reason.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {n:4d}  {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
