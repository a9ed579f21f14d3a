"""Paper trading, headless. Until the engine lands this replays real recorded candles and logs
them, so `make run` shows real data flowing with no network."""

from __future__ import annotations

import argparse
import logging
from typing import Any

COMMAND = "paper"
HELP = "run the bot in the paper wallet (replays recorded real candles when Bybit is unreachable)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbol", default="BTCUSDT", help="symbol to replay (default: BTCUSDT)")
    p.add_argument("--candles", type=int, default=0, help="stop after N candles (default: run to the end)")
    p.add_argument("--pace", type=float, default=None, help="seconds between candles (default: REPLAY_CANDLE_SECONDS)")


def run(args: argparse.Namespace, settings: Any) -> int:
    from bot.data_manager import DataManager, ReplayFeed, ms_to_iso

    log = logging.getLogger("bot.paper")
    dm = DataManager(settings)
    frame = dm.replay_frame(args.symbol, settings.CANDLE_INTERVAL)
    pace = settings.REPLAY_CANDLE_SECONDS if args.pace is None else args.pace
    feed = ReplayFeed(frame, args.symbol, settings.CANDLE_INTERVAL, pace_seconds=pace)
    log.info("REPLAY: %d recorded real %s/%s candles from %s to %s", len(frame), args.symbol,
             settings.CANDLE_INTERVAL, ms_to_iso(frame.index[0]), ms_to_iso(frame.index[-1]))
    for n, c in enumerate(feed, 1):
        log.info("REPLAY %s %s O %.2f H %.2f L %.2f C %.2f V %.2f", c.symbol, ms_to_iso(c.open_ms),
                 c.open, c.high, c.low, c.close, c.volume)
        if args.candles and n >= args.candles:
            break
    return 0
