"""bot/types.py's enums are their plain strings."""

from __future__ import annotations

import json

import pytest

from bot.types import (
    Connection,
    DataSource,
    Mode,
    OrderStatus,
    Position,
    PositionSide,
    Side,
    opposite,
)


# -- bot/types.py: the StrEnums -------------------------------------------------------------------
def test_enum_values_are_the_strings_on_disk():
    assert [m.value for m in Side] == ["Buy", "Sell"]
    assert [m.value for m in PositionSide] == ["long", "short"]
    assert [m.value for m in Mode] == ["PAPER", "LIVE", "BACKTEST"]
    assert [m.value for m in DataSource] == ["LIVE", "REPLAY"]
    assert [m.value for m in Connection] == ["Connected", "Reconnecting", "Offline-REPLAY"]
    assert [m.value for m in OrderStatus] == ["pending", "sent", "new", "partially_filled", "filled",
                                              "cancelled", "rejected", "failed", "lost"]


def test_an_enum_member_is_its_plain_string():
    s = OrderStatus.PARTIALLY_FILLED
    assert isinstance(s, str) and s == "partially_filled" and "partially_filled" == s
    assert f"{s}|{Side.BUY}|{Mode.LIVE:>6}" == "partially_filled|Buy|  LIVE"
    assert str(Connection.OFFLINE_REPLAY) == "Offline-REPLAY" and "%s" % DataSource.REPLAY == "REPLAY"
    assert {"Buy": 1}[Side.BUY] == 1 and {Side.SELL: 2}["Sell"] == 2      # hashes like the string
    assert json.dumps({"side": PositionSide.SHORT, Mode.PAPER: [OrderStatus.LOST]}) == \
        '{"side": "short", "PAPER": ["lost"]}'
    assert OrderStatus("filled") is OrderStatus.FILLED and Side("Sell") is Side.SELL
    with pytest.raises(ValueError):
        Side("buy")                                                        # Bybit's spelling only


def test_order_status_groups_are_sets_of_states_not_states():
    assert len(list(OrderStatus)) == 9 and "OPEN" not in OrderStatus.__members__
    groups = (OrderStatus.OPEN, OrderStatus.FINAL, OrderStatus.UNRESOLVED)
    assert all(isinstance(g, frozenset) for g in groups)
    assert set().union(*groups) == set(OrderStatus)                        # every state in one group
    assert sum(len(g) for g in groups) == len(OrderStatus)                 # ... and in one only
    assert OrderStatus.OPEN == {OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED}
    assert "filled" in OrderStatus.FINAL and "lost" in OrderStatus.UNRESOLVED and "lost" not in OrderStatus.FINAL


def test_plain_strings_still_work_where_enums_are_expected():
    assert opposite("Buy") is Side.SELL and opposite(Side.SELL) is Side.BUY
    assert Position("BTCUSDT", "short", 1.0, 100.0).direction == -1   # a plain string still reads
    assert Position("BTCUSDT", PositionSide.LONG, 1.0, 100.0).with_mark(110.0).unrealised_pnl == 10.0
