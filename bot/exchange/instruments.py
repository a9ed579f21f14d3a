"""Instrument rules: Bybit's recorded values for common pairs, a generic rule for the rest, the
instruments-info row parser, and the orderLinkId rule. Shared by the paper and live exchanges."""

from __future__ import annotations

import math
import re
from typing import Any

from bot.errors import DataError, InvalidOrderError
from bot.exchange.base import Instrument

__all__ = ["KNOWN_INSTRUMENTS", "known_instrument", "generic_instrument", "parse_instrument",
           "check_client_order_id"]

_CID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


def _f(text: Any, default: float = 0.0) -> float:
    try:
        return float(text) if text not in (None, "") else default
    except (TypeError, ValueError):
        return default


# Bybit instruments-info values, copied from self_test/fixtures/bybit/market_instruments_info_rows.json
# (real rows recorded by ccxt). linear: (tick, qtyStep, minOrderQty, minNotionalValue, maxMktOrderQty,
# maxLeverage); spot: (tick, basePrecision, minOrderQty, minOrderAmt, maxOrderQty, 1).
KNOWN_INSTRUMENTS: dict[str, dict[str, tuple[float, float, float, float, float, float]]] = {
    "linear": {
        "BTCUSDT": (0.10, 0.001, 0.001, 5, 119.0, 100), "ETHUSDT": (0.01, 0.01, 0.01, 5, 724.0, 100),
        "LTCUSDT": (0.01, 0.1, 0.1, 5, 6160.0, 50), "ADAUSDT": (0.0001, 1, 1, 5, 1109600, 75),
        "XRPUSDT": (0.0001, 1, 1, 5, 2467800, 75), "DOGEUSDT": (0.00001, 1, 1, 5, 5991100, 75),
        "TRXUSDT": (0.00001, 1, 1, 5, 1356000, 75), "ZRXUSDT": (0.00001, 1, 1, 5, 320000, 25),
    },
    "spot": {
        "BTCUSDT": (0.1, 0.000001, 0.000011, 5, 83, 1), "ETHUSDT": (0.01, 0.00001, 0.00029, 5, 4616.1353715, 1),
        "ADAUSDT": (0.0001, 0.01, 1.07, 5, 7591573.353578, 1), "LTCUSDT": (0.01, 0.00001, 0.00923, 5, 22975.3015508, 1),
        "XRPUSDT": (0.0001, 0.01, 0.44, 5, 2390343.014223, 1), "DOGEUSDT": (0.00001, 0.1, 3, 5, 22340128.455739, 1),
        "TRXUSDT": (0.0001, 0.01, 3.91, 5, 11125945.705385, 1),
    },
}


def check_client_order_id(cid: str) -> None:
    """Bybit's orderLinkId rule: 1-36 characters of letters, digits, '-' and '_'."""
    if not isinstance(cid, str) or not _CID_RE.match(cid):
        raise InvalidOrderError(f"client order id {cid!r} is not valid: use 1-36 characters of A-Z a-z 0-9 - _",
                                client_order_id=str(cid))


def generic_instrument(symbol: str, price: float, category: str = "linear") -> Instrument:
    """A sane rule for a symbol we have no recorded row for: about 5 significant price digits,
    a qty step worth 0.1-1 USDT, Bybit's usual 5 USDT minimum order value."""
    if price <= 0:
        raise DataError(f"{symbol}: cannot derive instrument rules without a positive price")
    tick = 10.0 ** (math.floor(math.log10(price)) - 4)
    step = 10.0 ** math.floor(math.log10(1.0 / price))
    return Instrument(symbol=symbol, tick_size=float(f"{tick:.12g}"), qty_step=float(f"{step:.12g}"),
                      min_qty=float(f"{step:.12g}"), min_notional=5.0, max_leverage=1 if category == "spot" else 10,
                      base_coin=symbol.removesuffix("USDT"), category=category)


def known_instrument(symbol: str, category: str) -> Instrument | None:
    row = KNOWN_INSTRUMENTS.get(category, {}).get(symbol)
    if row is None:
        return None
    tick, step, min_qty, min_notional, max_mkt, max_lev = row
    return Instrument(symbol=symbol, tick_size=tick, qty_step=step, min_qty=min_qty, min_notional=min_notional,
                      max_market_qty=max_mkt, max_leverage=max_lev, base_coin=symbol.removesuffix("USDT"),
                      category=category)


def parse_instrument(row: dict[str, Any], category: str) -> Instrument:
    """An instruments-info row (linear or spot) -> `Instrument`."""
    lot, pf = row.get("lotSizeFilter", {}), row.get("priceFilter", {})
    if category == "spot":
        step = _f(lot.get("basePrecision"))
        return Instrument(symbol=row["symbol"], tick_size=_f(pf.get("tickSize")), qty_step=step,
                          min_qty=max(step, _f(lot.get("minOrderQty"))), min_notional=_f(lot.get("minOrderAmt")),
                          max_qty=_f(lot.get("maxOrderQty"), float("inf")),
                          max_market_qty=_f(lot.get("maxMarketOrderQty") or lot.get("maxOrderQty"), float("inf")),
                          max_leverage=1.0, base_coin=row.get("baseCoin", ""), quote_coin=row.get("quoteCoin", "USDT"),
                          category=category, status=row.get("status", "Trading"))
    return Instrument(symbol=row["symbol"], tick_size=_f(pf.get("tickSize")), qty_step=_f(lot.get("qtyStep")),
                      min_qty=_f(lot.get("minOrderQty")), min_notional=_f(lot.get("minNotionalValue")),
                      max_qty=_f(lot.get("maxOrderQty"), float("inf")),
                      max_market_qty=_f(lot.get("maxMktOrderQty") or lot.get("maxOrderQty"), float("inf")),
                      max_leverage=_f(row.get("leverageFilter", {}).get("maxLeverage"), 1.0),
                      base_coin=row.get("baseCoin", ""), quote_coin=row.get("quoteCoin", "USDT"),
                      category=category, status=row.get("status", "Trading"))
