"""The current hot-pair ranking: Bybit's public tickers and instruments (no keys), USDT pairs
with status Trading, scored by 24 h turnover, volatility (24 h range) and momentum with the
PAIR_WEIGHT_* settings. When Bybit cannot be reached: the cached ranking, then FALLBACK_SYMBOLS
(the source is printed).

Exit codes: 0 ranking shown (from Bybit, the cache or the fallback list), 2 bad settings.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

COMMAND = "pairs"
HELP = "show the hot-pair ranking (Bybit tickers; cache or fallback list when offline)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top", type=int, default=None, help="how many pairs (default: TOP_PAIRS_COUNT)")


def run(args: argparse.Namespace, settings: Any) -> int:
    from bot.market.top_pairs import PairManager

    if args.top is not None:
        if args.top < 1:
            print(f"--top must be at least 1, got {args.top}")
            return 2
        settings = settings.replace(TOP_PAIRS_COUNT=args.top)
    pm = PairManager(settings)
    r = pm.refresh(force=True)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(r.time_ms / 1000))
    print(f"hot pairs ({settings.EXCHANGE_CATEGORY}, source: {r.source}, {when})"
          + (f" -- Bybit: {pm.last_error}" if pm.last_error else ""))
    print(f"{'#':>2}  {'symbol':<12} {'score':>6}  {'turnover 24h USDT':>18}  {'range 24h':>9}  {'change 24h':>10}")
    for i, p in enumerate(r.pairs, 1):
        if r.source == "fallback":          # no numbers behind these: say so instead of printing zeros
            print(f"{i:>2}  {p.symbol:<12} {'-':>6}  {'-':>18}  {'-':>9}  {'-':>10}  (FALLBACK_SYMBOLS)")
            continue
        print(f"{i:>2}  {p.symbol:<12} {p.score:>6.3f}  {p.turnover_24h:>18,.0f}  {p.volatility:>9.2%}  "
              f"{p.momentum:>+10.2%}")
    return 0
