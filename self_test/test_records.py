"""`bot.records.fast_init`: the quick `__init__` of the hot frozen records makes the same records."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from bot.records import fast_init


def _twins():
    """The same frozen dataclass twice, one with `fast_init`: every kind of field."""

    def make():
        @dataclasses.dataclass(frozen=True)
        class Rec:
            a: int
            b: str = "b"
            c: list[int] = dataclasses.field(default_factory=lambda: [1])
            d: float = dataclasses.field(default=2.0, init=False)
            e: dict[str, int] = dataclasses.field(default_factory=dict, init=False)
            f: int = dataclasses.field(default=5, kw_only=True)
            g: int = dataclasses.field(kw_only=True, default_factory=lambda: 7)

            def __post_init__(self) -> None:
                if self.a < 0:
                    raise ValueError("a must not be negative")
        return Rec

    return make(), fast_init(make())


@pytest.mark.parametrize("args, kwargs", [((1,), {}), ((1, "x"), {}), ((1, "x", [3]), {"f": 9}),
                                          ((), {"a": 2, "g": 0, "c": []}), ((3,), {"b": "y", "f": 1, "g": 2})])
def test_the_quick_init_makes_the_same_record(args, kwargs):
    plain, quick = _twins()
    p, q = plain(*args, **kwargs), quick(*args, **kwargs)
    assert p.__dict__ == q.__dict__
    assert dataclasses.asdict(p) == dataclasses.asdict(q)
    assert inspect.signature(plain) == inspect.signature(quick)
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.a = 5   # type: ignore[misc]
    assert dataclasses.replace(q, b="z").__dict__ == dataclasses.replace(p, b="z").__dict__
    one, two = quick(1), quick(1)
    assert one.c == [1] and one.c is not two.c and one.e is not two.e    # a fresh default each time


def test_the_quick_init_checks_like_the_dataclass_one():
    plain, quick = _twins()
    for cls in (plain, quick):
        with pytest.raises(ValueError, match="negative"):   # __post_init__ still runs
            cls(-1)
        with pytest.raises(TypeError):
            cls()                                           # a required field missing
        with pytest.raises(TypeError):
            cls(1, "b", [], 5)                              # a keyword-only field given by position
        with pytest.raises(TypeError):
            cls(1, d=3.0)                                   # not an init field
    with pytest.raises(TypeError, match="dataclass"):
        fast_init(int)


def test_the_hot_records_keep_their_dataclass_signatures():
    """The records that got the quick init take the arguments their fields say."""
    from bot.engine.state import TradeMarker
    from bot.exchange.executor import ExecutionResult
    from bot.exchange.ledger import Booked
    from bot.safety.risk import RiskDecision
    from bot.strategies.base import Decision
    from bot.types import Candle, ClosedTrade, Fill, Order, OrderIntent

    for cls in (Candle, Order, Fill, OrderIntent, ClosedTrade, Decision, ExecutionResult, Booked, TradeMarker,
                RiskDecision):
        params = inspect.signature(cls).parameters
        fields = [f for f in dataclasses.fields(cls) if f.init]
        assert list(params) == [f.name for f in fields], cls
        for p, f in zip(params.values(), fields, strict=True):
            if f.default_factory is not dataclasses.MISSING:
                assert p.default is not inspect.Parameter.empty, (cls, f.name)
            else:
                assert p.default == (inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
    with pytest.raises(ValueError, match="target"):
        Decision(target=2)
