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
    from bot.strategies.review import ReviewedStrategy, ReviewPipeline

    wrapped = ReviewedStrategy(analyst, ReviewPipeline(s))    # reviewed inside: the engine must not review again
    assert isinstance(wrapped, ProposesForReview) and not wrapped.proposes_for_review
    assert wrapped.name == "analyst" and isinstance(wrapped, WarmsUp)


def test_the_engine_trains_only_a_learning_strategy(tmp_path) -> None:
    """The training switch reaches the agent through the capability, and the backtester sends the
    agent (and only it) to its own fast path."""
    pytest.importorskip("torch")
    from bot.engine.trading_engine import TradingEngine

    s = make_settings(tmp_path, TRAINING_ENABLED=False)
    engine = TradingEngine(s, strategy="dqn")
    engine.prepare("BACKTEST")
    assert isinstance(engine.c.strategy, LearningStrategy) and engine.c.strategy.training is False
    engine.set_training(True)
    assert engine.c.strategy.agent.training is True and engine.snapshot().training is True
    assert engine.step.context_candles == 2000 and engine.step.warmup >= 200     # the agent's state needs EMA 200
    sma = TradingEngine(s, strategy="sma")
    sma.prepare("BACKTEST")
    sma.set_training(True)                       # nothing to train: no error, nothing changes
    assert sma.step.learner is None and sma.step.context_candles == 500 and sma.step.warmup < 200
