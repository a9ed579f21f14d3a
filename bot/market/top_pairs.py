"""PairManager: which pairs are "hot" right now, ranked from Bybit's public tickers.

Every PAIR_REFRESH_MINUTES: fetch tickers and instruments (public endpoints through pybit, no
keys), keep USDT pairs with status Trading (linear: perpetuals only), drop those under
PAIR_MIN_TURNOVER, and rank by a weighted score of three features, each scaled 0..1 across the
candidates (min-max):

- turnover: log10 of the 24 h turnover in USDT (liquidity; log because it spans decades),
- volatility: the 24 h range (high - low) / last price (a 24 h ATR proxy that needs no klines),
- momentum: |24 h change| on linear (we trade both sides), the signed change on spot (long only),

with weights PAIR_WEIGHT_TURNOVER / _VOLATILITY / _MOMENTUM, plus an optional sentiment hook
(`sentiment(symbol) -> -1..1 or None`). The top TOP_PAIRS_COUNT are cached on disk with their time
(atomic write); when Bybit fails the last cache is used, then FALLBACK_SYMBOLS. A pair that leaves
the set stays managed until its position is closed (`tracked`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bot.atomic import atomic_write_json
from bot.errors import DataError, NetworkError

__all__ = ["PairManager", "PairScore", "Ranking", "rank_pairs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairScore:
    symbol: str
    score: float
    turnover_24h: float
    volatility: float          # 24 h range / last price
    momentum: float            # 24 h change, fraction
    sentiment: float | None = None


@dataclass(frozen=True)
class Ranking:
    """The hot pairs at `time_ms`, best first; `source`: bybit | cache | fallback."""

    pairs: tuple[PairScore, ...]
    time_ms: int
    source: str

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(p.symbol for p in self.pairs)

    @property
    def scores(self) -> tuple[tuple[str, float], ...]:
        return tuple((p.symbol, round(p.score, 4)) for p in self.pairs)


def _f(row: dict[str, Any], key: str) -> float:
    try:
        v = float(row.get(key) or "nan")
    except (TypeError, ValueError):
        return math.nan
    return v


def _scale(values: list[float]) -> list[float]:
    lo, hi = min(values), max(values)
    return [0.5 if hi - lo < 1e-15 else (v - lo) / (hi - lo) for v in values]


def rank_pairs(tickers: Iterable[dict[str, Any]], instruments: Iterable[dict[str, Any]], settings: Any, *,
               sentiment: Callable[[str], float | None] | None = None, sentiment_weight: float = 0.1
               ) -> list[PairScore]:
    """Rank Bybit ticker rows (GET /v5/market/tickers) among tradable instruments
    (GET /v5/market/instruments-info), best first. Pure: no I/O."""
    quote = settings.QUOTE_COIN
    linear = settings.EXCHANGE_CATEGORY == "linear"
    ok = set()
    for r in instruments:
        if r.get("status") != "Trading" or r.get("quoteCoin") != quote:
            continue
        if linear and r.get("contractType", "LinearPerpetual") != "LinearPerpetual":
            continue
        ok.add(r.get("symbol"))
    cands = []
    for t in tickers:
        sym = t.get("symbol")
        last, turnover = _f(t, "lastPrice"), _f(t, "turnover24h")
        hi, lo, chg = _f(t, "highPrice24h"), _f(t, "lowPrice24h"), _f(t, "price24hPcnt")
        if sym not in ok or not all(math.isfinite(x) for x in (last, turnover, hi, lo, chg)) or last <= 0:
            continue
        if turnover < settings.PAIR_MIN_TURNOVER:
            continue
        cands.append((sym, turnover, (hi - lo) / last, chg))
    if not cands:
        return []
    t_s = _scale([math.log10(max(c[1], 1.0)) for c in cands])
    v_s = _scale([c[2] for c in cands])
    m_s = _scale([abs(c[3]) if linear else c[3] for c in cands])
    out = []
    for (sym, turnover, vol, mom), ts, vs, ms in zip(cands, t_s, v_s, m_s, strict=True):
        score = (settings.PAIR_WEIGHT_TURNOVER * ts + settings.PAIR_WEIGHT_VOLATILITY * vs
                 + settings.PAIR_WEIGHT_MOMENTUM * ms)
        senti = sentiment(sym) if sentiment is not None else None
        if senti is not None:
            score += sentiment_weight * max(-1.0, min(1.0, float(senti)))
        out.append(PairScore(sym, score, turnover, vol, mom, senti))
    out.sort(key=lambda p: (-p.score, p.symbol))
    return out


class PairManager:
    """Keeps the hot-pair ranking fresh; never leaves the bot without pairs."""

    def __init__(self, settings: Any, *, http: Any = None, cache_path: Path | None = None,
                 clock: Callable[[], float] = time.time,
                 sentiment: Callable[[str], float | None] | None = None) -> None:
        self.settings = settings
        self._http = http
        self.cache_path = Path(cache_path) if cache_path else Path(settings.data_dir) / "top_pairs.json"
        self.clock = clock
        self.sentiment = sentiment
        self.ranking: Ranking | None = None
        self._next_refresh = 0.0
        self.last_error = ""

    @property
    def http(self) -> Any:
        if self._http is None:
            from pybit.unified_trading import HTTP  # public endpoints: no keys

            http = HTTP(testnet=self.settings.USE_TESTNET, timeout=self.settings.BYBIT_TIMEOUT, max_retries=1,
                        retry_delay=1)
            if self.settings.BYBIT_BASE_URL:
                http.endpoint = self.settings.BYBIT_BASE_URL.rstrip("/")
            self._http = http
        return self._http

    # -- fetching ------------------------------------------------------------------------------
    def fetch(self) -> tuple[list[dict], list[dict]]:
        """Ticker rows and instrument rows from Bybit (instruments paginated by cursor)."""
        import requests
        from pybit.exceptions import FailedRequestError, InvalidRequestError

        cat = self.settings.EXCHANGE_CATEGORY
        try:
            tickers = self.http.get_tickers(category=cat)["result"]["list"]
            instruments: list[dict] = []
            cursor = ""
            for _ in range(20):  # Bybit pages instruments 1000 at a time; 20 pages is far beyond any listing
                kw = {"category": cat, "limit": 1000}
                if cursor:
                    kw["cursor"] = cursor
                res = self.http.get_instruments_info(**kw)["result"]
                instruments.extend(res.get("list", []))
                cursor = res.get("nextPageCursor") or ""
                if not cursor:
                    break
        except (requests.exceptions.RequestException, FailedRequestError) as exc:
            raise NetworkError(f"Bybit tickers/instruments request failed: {exc}") from exc
        except InvalidRequestError as exc:
            raise DataError(f"Bybit refused the tickers/instruments request: {exc.message}") from exc
        except (KeyError, TypeError) as exc:
            raise DataError(f"Bybit tickers/instruments reply has no result.list ({exc})") from exc
        return list(tickers), instruments

    # -- the ranking, with its fallbacks ---------------------------------------------------------
    def due(self) -> bool:
        return self.ranking is None or self.clock() >= self._next_refresh

    def refresh(self, *, force: bool = False) -> Ranking:
        """A fresh ranking if due (or forced); on failure the cached one, then the fallback list."""
        if not force and not self.due():
            return self.ranking  # type: ignore[return-value]
        self._next_refresh = self.clock() + self.settings.PAIR_REFRESH_MINUTES * 60
        now_ms = int(self.clock() * 1000)
        try:
            tickers, instruments = self.fetch()
            ranked = rank_pairs(tickers, instruments, self.settings, sentiment=self.sentiment)
            if not ranked:
                raise DataError("no USDT pair with status Trading passed the turnover filter")
            self.ranking = Ranking(tuple(ranked[: self.settings.TOP_PAIRS_COUNT]), now_ms, "bybit")
            self._save(self.ranking)
            self.last_error = ""
            log.info("hot pairs from Bybit: %s", ", ".join(f"{s} {v:.2f}" for s, v in self.ranking.scores))
            return self.ranking
        except (NetworkError, DataError) as exc:
            self.last_error = str(exc)
            cached = self.load_cache()
            if cached is not None:
                self.ranking = Ranking(cached.pairs, cached.time_ms, "cache")
                log.warning("hot pairs: Bybit failed (%s); using the cached ranking from %s", exc,
                            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(cached.time_ms / 1000)))
            else:
                syms = self.settings.FALLBACK_SYMBOLS[: max(self.settings.TOP_PAIRS_COUNT, 1)]
                self.ranking = Ranking(tuple(PairScore(s, 0.0, 0.0, 0.0, 0.0) for s in syms), now_ms, "fallback")
                log.warning("hot pairs: Bybit failed (%s) and no cache; using FALLBACK_SYMBOLS %s", exc,
                            ", ".join(syms))
            return self.ranking

    def tracked(self, open_symbols: Iterable[str]) -> tuple[str, ...]:
        """Hot pairs plus pairs that left the set but still hold a position (managed to their exit)."""
        hot = list(self.ranking.symbols if self.ranking else self.settings.FALLBACK_SYMBOLS)
        return tuple(hot + [s for s in open_symbols if s not in hot])

    # -- cache ---------------------------------------------------------------------------------
    def _save(self, r: Ranking) -> None:
        atomic_write_json(self.cache_path, {"time_ms": r.time_ms, "pairs": [asdict(p) for p in r.pairs]}, indent=1)

    def load_cache(self) -> Ranking | None:
        """The ranking saved last time, or None (missing or unreadable: said in the log)."""
        if not self.cache_path.exists():
            return None
        try:
            d = json.loads(self.cache_path.read_text())
            pairs = tuple(PairScore(**p) for p in d["pairs"])
            return Ranking(pairs, int(d["time_ms"]), "cache") if pairs else None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("hot-pair cache %s is unreadable (%s); ignoring it", self.cache_path, exc)
            return None
