"""Learning designs the research protocol (bot/research/protocol.py) measures against each other.

Each variant is the same DQN learner with one thing changed:

- `baseline`: the current agent (flat / long / short, log-equity reward, 1 h state).
- `long_only`: flat / long only (as on spot): half the ways to be wrong.
- `dsr`: the differential Sharpe ratio as the reward (Moody & Saffell 2001): each step is
  rewarded by how much it raised an exponentially weighted Sharpe ratio of the episode's
  returns, so a gain bought with volatility counts for less than a steady one.
- `mtf`: multi-timeframe state: the 1 h state plus 4 h and daily context
  (bot/agent/timeframes.py), from completed higher-timeframe candles only. Hourly data only.
- ensembles (`<variant>+ens`): several seeds' networks trading as one, by their averaged
  Q-values (`EnsembleAgent`); built by the protocol from the members it trained anyway.

Every variant trains through plain autograd (`DQNConfig.learner = "autograd"`); the numpy
learner is the tested-equal fast path of the one architecture all of them share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.agent.environment import TradingEnv

__all__ = ["Variant", "VARIANTS", "DifferentialSharpeEnv", "EnsembleAgent", "ENSEMBLE_SUFFIX"]

ENSEMBLE_SUFFIX = "+ens"


@dataclass(frozen=True)
class Variant:
    """One learning design: changes to the learner, the settings and the environment."""

    name: str
    description: str
    config: dict[str, Any] = field(default_factory=dict)       # DQNConfig changes
    settings: dict[str, Any] = field(default_factory=dict)     # Settings changes
    reward: str = "log"                                        # "log" (equity growth) or "dsr"
    timeframes: bool = False                                   # 4 h + daily context in the state
    servable: bool = True                                      # the live DQN strategy can run it

    def env_class(self) -> type[TradingEnv]:
        return DifferentialSharpeEnv if self.reward == "dsr" else TradingEnv


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("baseline", "the current agent: flat/long/short, log-equity reward, 1 h state"),
    Variant("long_only", "flat/long only (as on spot)", settings={"EXCHANGE_CATEGORY": "spot", "LEVERAGE": 1.0}),
    Variant("dsr", "differential Sharpe ratio reward (Moody & Saffell)", reward="dsr"),
    Variant("mtf", "1 h state + 4 h and daily context (completed candles)", timeframes=True, servable=False),
)}


class DifferentialSharpeEnv(TradingEnv):
    """A TradingEnv whose reward is the differential Sharpe ratio of each episode's log returns.

    With A and B the exponential averages (rate `eta`) of the returns r and of r^2:
    D = (B dA - A dB / 2) / (B - A^2)^(3/2), dA = r - A, dB = r^2 - B; then A += eta dA,
    B += eta dB. D is in units of "Sharpe per step"; it is multiplied by the market's typical
    step size (root mean square of the candles' log returns) so it has the scale of the log
    return it replaces, and clipped to +-10 of those. The trade penalty of the reward system
    still applies per position change; fees are inside r.
    """

    eta = 0.01

    def __init__(self, data: Any, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        r = np.diff(np.log(data.close))
        r = r[np.isfinite(r)]
        self._scale = float(np.sqrt(np.mean(r * r))) if len(r) else 0.01
        self._b0 = self._scale ** 2
        self._a = np.zeros(self.n_envs)
        self._b = np.full(self.n_envs, self._b0)
        self._penalty = float(self.reward_system.weights.trade_penalty)

    def reset(self, **kwargs: Any) -> np.ndarray:
        obs = super().reset(**kwargs)
        self._a = np.zeros(self.n_envs)
        self._b = np.full(self.n_envs, self._b0)
        return obs

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        eq_before, pa_before = self.equity, self.pa
        obs, _, term, trunc, info = super().step(actions)
        r = np.log(info["equity"] / eq_before)
        a, b = self._a, self._b
        da, db = r - a, r * r - b
        var = np.maximum(b - a * a, 1e-12)
        d = (b * da - 0.5 * a * db) / var ** 1.5
        reward = np.clip(d * self._scale, -10 * self._scale, 10 * self._scale)
        if self._penalty:
            reward = reward - self._penalty * (info["action"] != pa_before)
        self._a, self._b = a + self.eta * da, b + self.eta * db
        ended = term | trunc
        if ended.any():   # the finished episodes restarted inside step: fresh averages
            self._a = np.where(ended, 0.0, self._a)
            self._b = np.where(ended, self._b0, self._b)
        return obs, reward.astype(np.float32), term, trunc, info


class EnsembleAgent:
    """Several trained agents deciding as one: the mean of their Q-values, then the first
    member's greedy rule (its switch margin). Quacks like `SelfLearningBot` where the
    walk-forward evaluation needs it (`act`, `q_values`, `n_actions`, `config`, `settings`)."""

    def __init__(self, members: list[Any]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        dims = {(m.state_dim, m.n_actions) for m in members}
        if len(dims) != 1:
            raise ValueError(f"ensemble members disagree on state size / actions: {sorted(dims)}")
        self.members = members
        lead = members[0]
        self.config, self.settings = lead.config, lead.settings
        self.state_dim, self.n_actions = lead.state_dim, lead.n_actions
        self.feature_names = lead.feature_names

    def q_values(self, state: np.ndarray) -> np.ndarray:
        return np.mean([m.q_values(state) for m in self.members], axis=0)

    def act(self, state: np.ndarray, *, epsilon: float | None = None) -> Any:
        s = np.asarray(state, np.float32)
        batch = s.reshape(-1, self.state_dim)
        action = self.members[0].greedy(self.q_values(batch), batch)
        return int(action[0]) if s.ndim == 1 else action
