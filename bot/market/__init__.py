"""Market: candles in and out. The canonical candle frame and its validation, the Parquet cache,
Bybit's kline endpoint (through pybit), the recorded seed candles and file import, the LIVE and
REPLAY feeds the engine reads, higher timeframes without look-ahead, and the hot-pair ranking.

Import rule (docs/architecture.md): market never imports the engine; it uses only the primitives.
Names load on first use (PEP 562), so `import bot.market` imports none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.market.bybit_klines import BybitKlineSource
    from bot.market.bybit_socket import LinkState, StreamLink
    from bot.market.bybit_stream import KlineStream
    from bot.market.cache import CandleCache
    from bot.market.candles import make_frame
    from bot.market.data_manager import DataManager
    from bot.market.feeds import BybitMarket, MarketFeed, ReplayFeed, ReplayMarket, probe_bybit
    from bot.market.ohlcv_file import read_candle_file
    from bot.market.seed import SEED_FILES, load_seed
    from bot.market.timeframes import bucket_start, ratio, resample
    from bot.market.top_pairs import PairManager

__all__ = [
    "DataManager", "CandleCache", "BybitKlineSource", "ReplayFeed", "SEED_FILES", "load_seed",
    "make_frame", "MarketFeed", "BybitMarket", "ReplayMarket", "probe_bybit", "PairManager",
    "resample", "bucket_start", "ratio", "read_candle_file", "StreamLink", "LinkState", "KlineStream",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "DataManager": "data_manager", "CandleCache": "cache", "BybitKlineSource": "bybit_klines",
    "ReplayFeed": "feeds", "SEED_FILES": "seed", "load_seed": "seed",
    "make_frame": "candles", "MarketFeed": "feeds", "BybitMarket": "feeds",
    "ReplayMarket": "feeds", "probe_bybit": "feeds", "PairManager": "top_pairs",
    "resample": "timeframes", "bucket_start": "timeframes", "ratio": "timeframes",
    "read_candle_file": "ohlcv_file", "StreamLink": "bybit_socket", "LinkState": "bybit_socket",
    "KlineStream": "bybit_stream",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
