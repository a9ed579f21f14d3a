"""The fake Bybit's account: orders, fills, positions and a UNIFIED USDT wallet.

Written independently of `bot.exchange.sim` on purpose: the paper-vs-live test compares the two,
so they must not share their arithmetic. Rules follow ../shared/bybit_v5_reference.md (3.4-3.13,
4, 5): instrument checks (qtyStep, minOrderQty, minNotionalValue / spot minOrderAmt), margin
check (110007), reduce-only on a flat position (110017), duplicate orderLinkId (110072 linear,
170141 spot), position-mode check of `positionIdx` (10001), leverage not modified (110043),
TP/SL not modified (34040). Market orders fill at once at the fake's last price (no slippage)
with the taker fee; marketable limit orders likewise; other limit orders rest until `set_price`
crosses them (maker fee). Position stop-loss / take-profit trigger in `set_price`.
Spot buy fees are taken in the base coin (what is bought), sell fees in USDT, as Bybit does.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from self_test.fakes.bybit_server import BybitReject, FakeBybit, _fmt

__all__ = ["FakeBook"]

_LINK_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
EPS = 1e-12


def _num(params: dict[str, Any], key: str, default: float | None = None) -> float | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise BybitReject(10001, f"params error: {key} is not a number") from None


def _is_multiple(x: float, step: float) -> bool:
    q = Decimal(str(x)) / Decimal(str(step))
    return q == q.to_integral_value()


class FakeBook:
    """State behind the private endpoints. All methods run under the server's lock."""

    def __init__(self, server: FakeBybit, *, balance: float = 1000.0, taker_fee: float = 0.00055,
                 maker_fee: float = 0.0002, spot_fee: float = 0.001,
                 clock: Callable[[], float] = time.time) -> None:
        self.server = server
        self.wallet = balance                     # USDT wallet balance
        self.coins: dict[str, float] = {}         # spot holdings by coin
        self.taker_fee, self.maker_fee, self.spot_fee = taker_fee, maker_fee, spot_fee
        self.clock = clock
        self.prices: dict[str, float] = {}
        self.orders: dict[str, dict[str, Any]] = {}      # orderId -> order (floats inside)
        self.links: dict[str, str] = {}                   # orderLinkId -> orderId
        self.executions: list[dict[str, Any]] = []
        self.positions: dict[tuple[str, int], dict[str, Any]] = {}
        self.leverage: dict[str, float] = {}
        self.hedge_mode = False
        # the WebSocket fake's hook: called (kind, order) on "order" (placed and resting, cancelled),
        # "fill" (the order filled; its execution is executions[-1]) and "position" (stops changed)
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []

    def _notify(self, kind: str, order: dict[str, Any]) -> None:
        for fn in self.listeners:
            fn(kind, order)

    def ms(self) -> int:
        return int(self.clock() * 1000)

    # -- instruments and prices --------------------------------------------------------------
    def instrument(self, category: str, symbol: str) -> dict[str, Any]:
        for row in self.server.instruments.get(category, []):
            if row.get("symbol") == symbol:
                return row
        raise BybitReject(10001, f"params error: symbol invalid {symbol}")

    def price(self, symbol: str) -> float:
        if symbol not in self.prices:
            raise BybitReject(10001, f"no last price for {symbol} on the fake (call set_price)")
        return self.prices[symbol]

    # -- positions ---------------------------------------------------------------------------
    def _pos(self, symbol: str, idx: int) -> dict[str, Any]:
        return self.positions.setdefault((symbol, idx), {
            "size": 0.0, "avg": 0.0, "cur_realised": 0.0, "cum_realised": 0.0, "sl": 0.0, "tp": 0.0,
            "created": self.ms(), "updated": self.ms()})

    def lev(self, symbol: str) -> float:
        return self.leverage.get(symbol, 1.0)

    def upl(self) -> float:
        return sum(p["size"] * (self.prices.get(s, p["avg"]) - p["avg"]) for (s, _), p in self.positions.items())

    def initial_margin(self) -> float:
        return sum(abs(p["size"]) * p["avg"] / self.lev(s) for (s, _), p in self.positions.items())

    def order_margin(self) -> float:
        return sum(o["leaves"] * o["price"] / self.lev(o["symbol"]) for o in self.orders.values()
                   if o["category"] == "linear" and o["status"] in ("New", "PartiallyFilled") and not o["reduce"])

    def available(self) -> float:
        return self.wallet + self.upl() - self.initial_margin() - self.order_margin()

    def _check_idx(self, side: str, idx: int, reduce: bool) -> None:
        if not self.hedge_mode:
            if idx != 0:
                raise BybitReject(10001, "position idx not match position mode")
            return
        want = (2 if side == "Buy" else 1) if reduce else (1 if side == "Buy" else 2)
        if idx != want:
            raise BybitReject(10001, "position idx not match position mode")

    # -- orders ------------------------------------------------------------------------------
    def create(self, p: dict[str, Any]) -> dict[str, str]:
        category = p.get("category")
        if category not in ("linear", "spot"):
            raise BybitReject(10001, "params error: category")
        symbol, side, otype = p.get("symbol", ""), p.get("side"), p.get("orderType")
        if side not in ("Buy", "Sell") or otype not in ("Market", "Limit"):
            raise BybitReject(10001, "params error: side or orderType")
        link = str(p.get("orderLinkId") or "")
        if link and not _LINK_RE.match(link):
            raise BybitReject(10001, "params error: orderLinkId is invalid or longer than 36")
        if link and link in self.links:
            raise BybitReject(*((110072, "OrderLinkedID is duplicate") if category == "linear"
                                else (170141, "Duplicate clientOrderId")))
        inst = self.instrument(category, symbol)
        qty = _num(p, "qty")
        if qty is None or qty <= 0:
            raise BybitReject(10001, "params error: qty")
        last = self.price(symbol)
        limit = _num(p, "price") if otype == "Limit" else None
        if otype == "Limit":
            if limit is None or limit <= 0 or not _is_multiple(limit, float(inst["priceFilter"]["tickSize"])):
                raise BybitReject(10001, "params error: price invalid or not a multiple of tickSize")
        ref = limit if limit is not None else last
        reduce = bool(p.get("reduceOnly"))
        lot = inst["lotSizeFilter"]
        if category == "linear":
            idx = int(p.get("positionIdx", 0))
            self._check_idx(side, idx, reduce)
            if not _is_multiple(qty, float(lot["qtyStep"])):
                raise BybitReject(10001, "Qty invalid: not a multiple of qtyStep")
            if qty < float(lot["minOrderQty"]):
                raise BybitReject(10001, "The number of contracts exceeds minimum limit allowed")
            top = float(lot.get("maxMktOrderQty") or lot["maxOrderQty"]) if otype == "Market" else float(lot["maxOrderQty"])
            if qty > top:
                raise BybitReject(10001, "The number of contracts exceeds maximum limit allowed")
            if not reduce and qty * ref < float(lot.get("minNotionalValue", 0)):
                raise BybitReject(110094, "Order does not meet minimum order value")
            pos = self._pos(symbol, idx)
            if reduce:
                closing = (pos["size"] > 0 and side == "Sell") or (pos["size"] < 0 and side == "Buy")
                if not closing:
                    raise BybitReject(110017, "current position is zero, cannot fix reduce-only order qty")
                qty = min(qty, abs(pos["size"]))
            else:
                opening = qty
                if (pos["size"] > 0 and side == "Sell") or (pos["size"] < 0 and side == "Buy"):
                    opening = max(0.0, qty - abs(pos["size"]))
                need = opening * ref / self.lev(symbol) + qty * ref * self.taker_fee
                if need > self.available() + 1e-9:
                    raise BybitReject(110007, "ab not enough for new order")
        else:
            idx = 0
            if otype == "Market" and side == "Buy" and p.get("marketUnit") != "baseCoin":
                qty = float(Decimal(str(qty / last)).quantize(Decimal(lot["basePrecision"]), rounding="ROUND_DOWN"))
            if not _is_multiple(qty, float(lot["basePrecision"])):
                raise BybitReject(170137, "Order quantity has too many decimals.")
            if qty * ref < float(lot["minOrderAmt"]):
                raise BybitReject(170140, "Order value exceeded lower limit.")
            base = inst["baseCoin"]
            if side == "Buy" and qty * ref > self.wallet + 1e-9:
                raise BybitReject(170131, "Insufficient balance.")
            if side == "Sell" and qty > self.coins.get(base, 0.0) + EPS:
                raise BybitReject(170131, "Insufficient balance.")
        oid = str(uuid.uuid4())
        now = self.ms()
        order = {"orderId": oid, "orderLinkId": link, "category": category, "symbol": symbol, "side": side,
                 "orderType": otype, "qty": qty, "price": limit if limit is not None else last,
                 "limit": limit, "status": "New", "leaves": qty, "cum_qty": 0.0, "cum_value": 0.0,
                 "cum_fee": 0.0, "reduce": reduce, "idx": idx, "sl": _num(p, "stopLoss", 0.0),
                 "tp": _num(p, "takeProfit", 0.0), "created": now, "updated": now}
        self.orders[oid] = order
        if link:
            self.links[link] = oid
        if otype == "Market" or (side == "Buy" and limit >= last) or (side == "Sell" and limit <= last):
            self._fill(order, last, maker=False)
        else:
            self._notify("order", order)
        return {"orderId": oid, "orderLinkId": link}

    def _fill(self, o: dict[str, Any], price: float, *, maker: bool) -> None:
        qty = o["leaves"]
        rate = self.spot_fee if o["category"] == "spot" else (self.maker_fee if maker else self.taker_fee)
        fee = qty * price * rate
        signed = qty if o["side"] == "Buy" else -qty
        closed = 0.0
        if o["category"] == "linear":
            pos = self._pos(o["symbol"], o["idx"])
            if pos["size"] == 0:
                pos["cur_realised"] = 0.0
                pos["sl"], pos["tp"] = 0.0, 0.0
            if pos["size"] == 0 or (pos["size"] > 0) == (signed > 0):
                new = round(pos["size"] + signed, 12)
                pos["avg"] = (abs(pos["size"]) * pos["avg"] + qty * price) / abs(new)
                pos["size"] = new
                if o["sl"] or o["tp"]:
                    pos["sl"], pos["tp"] = o["sl"] or pos["sl"], o["tp"] or pos["tp"]
            else:
                closed = min(qty, abs(pos["size"]))
                pnl = (price - pos["avg"]) * closed * (1 if pos["size"] > 0 else -1)
                pos["cur_realised"] += pnl
                pos["cum_realised"] += pnl
                self.wallet += pnl
                rest = round(qty - closed, 12)  # Bybit sizes are exact decimals
                pos["size"] = round(pos["size"] + (closed if pos["size"] < 0 else -closed), 12)
                if rest > EPS:  # flip
                    pos["size"], pos["avg"] = (rest if signed > 0 else -rest), price
                    pos["sl"], pos["tp"] = o["sl"], o["tp"]
                elif abs(pos["size"]) < EPS:
                    pos["size"], pos["avg"], pos["sl"], pos["tp"] = 0.0, 0.0, 0.0, 0.0
            pos["cur_realised"] -= fee
            pos["cum_realised"] -= fee
            pos["updated"] = self.ms()
            self.wallet -= fee
        else:
            # Bybit takes a spot buy's fee in the base coin (a 0.000666 BTC buy leaves 0.000665334 BTC)
            # and a sell's in the quote coin (reference 3.13; the recorded run).
            base = self.instrument("spot", o["symbol"])["baseCoin"]
            if o["side"] == "Buy":
                fee = round(qty * rate, 12)                     # in the base coin
                self.coins[base] = round(self.coins.get(base, 0.0) + qty - fee, 12)
                self.wallet -= qty * price
            else:
                self.coins[base] = round(self.coins.get(base, 0.0) - qty, 12)
                self.wallet += qty * price - fee
        fee_coin = (self.instrument("spot", o["symbol"])["baseCoin"] if o["category"] == "spot" and o["side"] == "Buy"
                    else "USDT")
        o.update(leaves=0.0, cum_qty=o["cum_qty"] + qty, cum_value=o["cum_value"] + qty * price,
                 cum_fee=o["cum_fee"] + fee, fee_coin=fee_coin, status="Filled", updated=self.ms())
        self.executions.append({
            "symbol": o["symbol"], "orderId": o["orderId"], "orderLinkId": o["orderLinkId"], "side": o["side"],
            "orderPrice": _fmt(o["price"]), "orderQty": _fmt(o["qty"]), "leavesQty": "0",
            "orderType": o["orderType"], "execFee": _fmt(fee), "execId": str(uuid.uuid4()),
            "execPrice": _fmt(price), "execQty": _fmt(qty), "execType": "Trade", "execValue": _fmt(qty * price),
            "execTime": str(self.ms()), "feeCurrency": fee_coin, "isMaker": maker, "feeRate": _fmt(rate),
            "markPrice": _fmt(price), "closedSize": _fmt(closed), "seq": len(self.executions) + 1,
            "stopOrderType": o.get("stop_type", ""),
            "category": o["category"]})
        self._notify("fill", o)

    def set_price(self, symbol: str, price: float) -> None:
        """Move the market: fill crossed limit orders, then trigger position stops."""
        self.prices[symbol] = price
        for o in list(self.orders.values()):
            if o["symbol"] == symbol and o["status"] == "New" and o["limit"] is not None:
                if (o["side"] == "Buy" and price <= o["limit"]) or (o["side"] == "Sell" and price >= o["limit"]):
                    self._fill(o, o["limit"], maker=True)
        for (s, idx), pos in list(self.positions.items()):
            if s != symbol or pos["size"] == 0:
                continue
            long = pos["size"] > 0
            hit = ((pos["sl"] and (price <= pos["sl"] if long else price >= pos["sl"]))
                   or (pos["tp"] and (price >= pos["tp"] if long else price <= pos["tp"])))
            if hit:
                stop_hit = pos["sl"] and (price <= pos["sl"] if long else price >= pos["sl"])
                oid = str(uuid.uuid4())
                o = {"orderId": oid, "orderLinkId": "", "category": "linear", "symbol": s,
                     "side": "Sell" if long else "Buy", "orderType": "Market", "qty": abs(pos["size"]),
                     "price": price, "limit": None, "status": "New", "leaves": abs(pos["size"]), "cum_qty": 0.0,
                     "cum_value": 0.0, "cum_fee": 0.0, "reduce": True, "idx": idx, "sl": 0.0, "tp": 0.0,
                     "created": self.ms(), "updated": self.ms(), "stop_type": "StopLoss" if stop_hit else "TakeProfit"}
                self.orders[oid] = o
                self._fill(o, price, maker=False)

    def cancel(self, p: dict[str, Any]) -> dict[str, str]:
        o = self._find(p)
        if o is None or o["status"] not in ("New", "PartiallyFilled"):
            raise BybitReject(*((110001, "Order does not exist.") if p.get("category") == "linear"
                                else (170213, "Order does not exist.")))
        o.update(status="Cancelled", updated=self.ms())
        self._notify("order", o)
        return {"orderId": o["orderId"], "orderLinkId": o["orderLinkId"]}

    def _find(self, p: dict[str, Any]) -> dict[str, Any] | None:
        if p.get("orderId"):
            return self.orders.get(p["orderId"])
        if p.get("orderLinkId"):
            oid = self.links.get(p["orderLinkId"])
            return self.orders.get(oid) if oid else None
        return None

    def order_row(self, o: dict[str, Any]) -> dict[str, Any]:
        avg = o["cum_value"] / o["cum_qty"] if o["cum_qty"] else 0.0
        return {
            "orderId": o["orderId"], "orderLinkId": o["orderLinkId"], "symbol": o["symbol"],
            "price": _fmt(o["limit"]) if o["limit"] is not None else "0", "qty": _fmt(o["qty"]),
            "side": o["side"], "isLeverage": "", "positionIdx": o["idx"], "orderStatus": o["status"],
            "cancelType": "UNKNOWN", "rejectReason": "EC_NoError", "avgPrice": _fmt(avg) if avg else "",
            "leavesQty": _fmt(o["leaves"]), "leavesValue": _fmt(o["leaves"] * o["price"]),
            "cumExecQty": _fmt(o["cum_qty"]), "cumExecValue": _fmt(o["cum_value"]),
            "cumExecFee": _fmt(o["cum_fee"]), "cumFeeDetail": {o.get("fee_coin", "USDT"): _fmt(o["cum_fee"])} if o["cum_fee"] else {},
            "timeInForce": "IOC" if o["orderType"] == "Market" else "GTC", "orderType": o["orderType"],
            "stopOrderType": "", "takeProfit": _fmt(o["tp"]) if o["tp"] else "",
            "stopLoss": _fmt(o["sl"]) if o["sl"] else "", "reduceOnly": o["reduce"], "closeOnTrigger": False,
            "createType": "CreateByUser", "createdTime": str(o["created"]), "updatedTime": str(o["updated"])}

    def query_orders(self, p: dict[str, Any], *, history: bool) -> dict[str, Any]:
        category = p.get("category")
        if category not in ("linear", "spot"):
            raise BybitReject(10001, "params error: category")
        if p.get("orderId") or p.get("orderLinkId"):
            o = self._find(p)
            rows = [o] if o is not None and o["category"] == category else []
        else:
            if category == "linear" and not (p.get("symbol") or p.get("settleCoin") or p.get("baseCoin")):
                raise BybitReject(10001, "params error: symbol, baseCoin or settleCoin is required")
            rows = [o for o in self.orders.values() if o["category"] == category]
            if p.get("symbol"):
                rows = [o for o in rows if o["symbol"] == p["symbol"]]
            is_open = [o["status"] in ("New", "PartiallyFilled") for o in rows]
            if not history and str(p.get("openOnly", "0")) == "0":
                rows = [o for o, op in zip(rows, is_open, strict=True) if op]
            elif history:
                rows = [o for o, op in zip(rows, is_open, strict=True) if not op]
        rows = sorted(rows, key=lambda o: o["created"], reverse=True)
        return {"category": category, "nextPageCursor": "", "list": [self.order_row(o) for o in rows]}

    def query_executions(self, p: dict[str, Any]) -> dict[str, Any]:
        category = p.get("category")
        rows = [e for e in self.executions if e["category"] == category]
        for key in ("symbol", "orderId", "orderLinkId"):
            if p.get(key):
                rows = [e for e in rows if e[key] == p[key]]
        if p.get("startTime"):
            rows = [e for e in rows if int(e["execTime"]) >= int(p["startTime"])]
        out = [{k: v for k, v in e.items() if k != "category"} for e in reversed(rows)]
        return {"category": category, "nextPageCursor": "", "list": out}

    def position_rows(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("category") != "linear":
            raise BybitReject(10001, "params error: category")
        if not (p.get("symbol") or p.get("settleCoin")):
            raise BybitReject(10001, "params error: symbol or settleCoin is required")
        rows = []
        keys = sorted(self.positions) if not p.get("symbol") else (
            [(p["symbol"], i) for i in ((1, 2) if self.hedge_mode else (0,))])
        for symbol, idx in keys:
            pos = self.positions.get((symbol, idx))
            if pos is None:
                if not p.get("symbol"):
                    continue
                pos = self._pos(symbol, idx)
            if not p.get("symbol") and pos["size"] == 0:
                continue
            mark = self.prices.get(symbol, pos["avg"])
            size = abs(pos["size"])
            rows.append({
                "positionIdx": idx, "symbol": symbol, "side": "" if size == 0 else ("Buy" if pos["size"] > 0 else "Sell"),
                "size": _fmt(size), "avgPrice": _fmt(pos["avg"]), "positionValue": _fmt(size * pos["avg"]),
                "leverage": _fmt(self.lev(symbol)), "markPrice": _fmt(mark), "liqPrice": "",
                "unrealisedPnl": _fmt(pos["size"] * (mark - pos["avg"])), "curRealisedPnl": _fmt(pos["cur_realised"]),
                "cumRealisedPnl": _fmt(pos["cum_realised"]), "takeProfit": _fmt(pos["tp"]) if pos["tp"] else "",
                "stopLoss": _fmt(pos["sl"]) if pos["sl"] else "", "trailingStop": "0", "tpslMode": "Full",
                "positionIM": _fmt(size * pos["avg"] / self.lev(symbol)), "positionStatus": "Normal",
                "createdTime": str(pos["created"]), "updatedTime": str(pos["updated"])})
        return {"category": "linear", "nextPageCursor": "", "list": rows}

    def trading_stop(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("tpslMode") not in ("Full", "Partial") or "positionIdx" not in p:
            raise BybitReject(10001, "params error: tpslMode and positionIdx are required")
        idx = int(p["positionIdx"])
        if (idx == 0) == self.hedge_mode:
            raise BybitReject(10001, "position idx not match position mode")
        pos = self.positions.get((p.get("symbol", ""), idx))
        if pos is None or pos["size"] == 0:
            raise BybitReject(10001, "can not set tp/sl/ts for zero position")
        sl, tp = _num(p, "stopLoss"), _num(p, "takeProfit")
        new_sl = pos["sl"] if sl is None else sl
        new_tp = pos["tp"] if tp is None else tp
        if (new_sl, new_tp) == (pos["sl"], pos["tp"]):
            raise BybitReject(34040, "not modified")
        pos["sl"], pos["tp"] = new_sl, new_tp
        self._notify("position", {"symbol": p.get("symbol", ""), "category": "linear"})
        return {}

    def set_leverage(self, p: dict[str, Any]) -> dict[str, Any]:
        buy, sell = _num(p, "buyLeverage"), _num(p, "sellLeverage")
        if buy is None or buy != sell or not 1 <= buy <= 100:
            raise BybitReject(10001, "params error: buyLeverage must equal sellLeverage, 1..maxLeverage")
        if self.leverage.get(p.get("symbol", ""), 1.0) == buy:
            raise BybitReject(110043, "Set leverage has not been modified.")
        self.leverage[p["symbol"]] = buy
        return {}

    def wallet_rows(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("accountType") != "UNIFIED":
            raise BybitReject(10001, "accountType only support UNIFIED")
        upl = self.upl()
        coins = [{"coin": "USDT", "equity": _fmt(self.wallet + upl), "usdValue": _fmt(self.wallet + upl),
                  "walletBalance": _fmt(self.wallet), "unrealisedPnl": _fmt(upl), "locked": "0",
                  "cumRealisedPnl": _fmt(sum(x["cum_realised"] for x in self.positions.values())),
                  "totalPositionIM": _fmt(self.initial_margin()), "totalOrderIM": _fmt(self.order_margin()),
                  "borrowAmount": "0", "marginCollateral": True, "collateralSwitch": True}]
        spot_value = 0.0
        for coin, qty in sorted(self.coins.items()):
            if abs(qty) < EPS:
                continue
            value = qty * self.prices.get(f"{coin}USDT", 0.0)
            spot_value += value
            coins.append({"coin": coin, "equity": _fmt(qty), "usdValue": _fmt(value), "walletBalance": _fmt(qty),
                          "unrealisedPnl": "0", "locked": "0", "cumRealisedPnl": "0", "borrowAmount": "0",
                          "marginCollateral": True, "collateralSwitch": True})
        if p.get("coin"):
            wanted = set(str(p["coin"]).split(","))
            coins = [c for c in coins if c["coin"] in wanted]
        total = self.wallet + upl + spot_value
        account = {"accountType": "UNIFIED", "totalEquity": _fmt(total), "totalWalletBalance": _fmt(self.wallet),
                   "totalMarginBalance": _fmt(self.wallet + upl),
                   "totalAvailableBalance": _fmt(max(0.0, self.available())), "totalPerpUPL": _fmt(upl),
                   "totalInitialMargin": _fmt(self.initial_margin()), "totalMaintenanceMargin": "0",
                   "accountIMRate": "0", "accountMMRate": "0", "accountLTV": "0", "coin": coins}
        return {"list": [account]}

    def fee_rates(self, p: dict[str, Any]) -> dict[str, Any]:
        category = p.get("category", "linear")
        taker, maker = (self.spot_fee, self.spot_fee) if category == "spot" else (self.taker_fee, self.maker_fee)
        symbols = [p["symbol"]] if p.get("symbol") else [r["symbol"] for r in self.server.instruments.get(category, [])]
        return {"list": [{"symbol": s, "takerFeeRate": _fmt(taker), "makerFeeRate": _fmt(maker)} for s in symbols]}
