"""The strategy capabilities (bot/strategies/base.py) that the engine and the backtester ask for
with isinstance instead of a strategy's name."""

from __future__ import annotations

import pytest

from bot.strategies import get_strategy
from bot.strategies.base import LearningStrategy, ProposesForReview, Strategy, WarmsUp
from self_test.conftest import make_settings


class OnlyDecides:
    """A strategy with nothing but a name and a decision (as tests and users may write one)."""

    name = "plain"

    def decide(self, context):
        raise AssertionError("not asked here")


def test_each_strategy_declares_what_it_can_do(tmp_path) -> None:
    pytest.importorskip("torch")
    s = make_settings(tmp_path)
    dqn, analyst, sma = (get_strategy(n, s) for n in ("dqn", "analyst", "sma"))
    plain = OnlyDecides()
    assert all(isinstance(x, Strategy) for x in (dqn, analyst, sma, plain))
    assert [isinstance(x, LearningStrategy) for x in (dqn, analyst, sma, plain)] == [True, False, False, False]
    assert [isinstance(x, ProposesForReview) for x in (dqn, analyst, sma, plain)] == [False, True, False, False]
    assert [isinstance(x, WarmsUp) for x in (dqn, analyst, sma, plain)] == [False, True, True, False]
    assert analyst.proposes_for_review and sma.warmup > 0

