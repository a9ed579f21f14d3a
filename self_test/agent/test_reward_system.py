"""RewardSystem on hand-worked examples: log equity net of fees, and each shaping term."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.agent.reward_system import RewardSystem, RewardWeights
from self_test.conftest import make_settings


def test_default_reward_is_log_growth_of_equity_after_fees():
    r = RewardSystem()
    # 100 -> 101: +1 %; log(1.01) = 0.00995033...
    assert r.compute(100.0, 101.0) == pytest.approx(0.009950330853168)
    # a fee is just a smaller equity_after: 100 -> 99.945 (0.055 % taker fee) = log(0.99945)
    assert r.compute(100.0, 99.945, position_changes=1) == pytest.approx(math.log(0.99945))
    # rewards add up to the log of the whole growth: 100 -> 110 -> 99 == log(0.99)
    assert r.compute(100.0, 110.0) + r.compute(110.0, 99.0) == pytest.approx(math.log(0.99))


def test_every_shaping_term_on_a_hand_worked_step():
    w = RewardWeights(trade_penalty=0.001, drawdown_penalty=0.5, losing_time_penalty=0.0001, no_stop_bonus=0.002)
    r = RewardSystem(w)
    # equity 100 -> 99 after a flip (2 changes), drawdown 2 % -> 3 %, in a losing trade:
    # log(0.99) - 0.001 * 2 - 0.5 * 0.01 - 0.0001 = -0.010050336 - 0.002 - 0.005 - 0.0001
    got = r.compute(100.0, 99.0, position_changes=2, drawdown_before=0.02, drawdown_after=0.03, losing=True)
    assert got == pytest.approx(-0.017150336, abs=1e-9)
    # closing by itself (no stop) while flat and the drawdown shrinks: only the trade penalty and bonus
    got = r.compute(100.0, 100.0, position_changes=1, drawdown_before=0.03, drawdown_after=0.01,
                    closed_without_stop=True)
    assert got == pytest.approx(-0.001 + 0.002)


def test_vectorised_matches_scalars():
    r = RewardSystem(RewardWeights(trade_penalty=0.0007, drawdown_penalty=1.0))
    eb, ea = np.array([100.0, 50.0, 10.0]), np.array([101.0, 49.0, 10.0])
    ch, d0, d1 = np.array([0, 1, 2]), np.array([0.0, 0.1, 0.2]), np.array([0.0, 0.12, 0.1])
    vec = r.compute(eb, ea, position_changes=ch, drawdown_before=d0, drawdown_after=d1)
    for i in range(3):
        assert vec[i] == pytest.approx(r.compute(eb[i], ea[i], position_changes=ch[i], drawdown_before=d0[i],
                                                 drawdown_after=d1[i]))


def test_weights_come_from_settings_and_overrides_are_checked(tmp_path):
    s = make_settings(tmp_path, REWARD_TRADE_PENALTY=0.002, REWARD_NO_STOP_BONUS=0.01)
    r = RewardSystem.from_settings(s)
    assert r.weights == RewardWeights(trade_penalty=0.002, no_stop_bonus=0.01)
    assert RewardSystem.from_settings(s, trade_penalty=0.0).weights.trade_penalty == 0.0
    with pytest.raises(ValueError, match="trade_penalty"):
        RewardSystem.from_settings(s, trade_penalti=1.0)


def test_non_positive_equity_is_refused():
    with pytest.raises(ValueError, match="equity must stay positive"):
        RewardSystem().compute(100.0, 0.0)
