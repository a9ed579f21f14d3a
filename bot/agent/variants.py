"""Learning designs the research protocol (bot/research/protocol.py) measures against each other.

Each variant is the same DQN learner with one thing changed:

- `baseline`: the current agent (flat / long / short, log-equity reward, 1 h state).
- `long_only`: flat / long only (as on spot): half the ways to be wrong.
- `dsr`: the differential Sharpe ratio as the reward (Moody & Saffell 2001): each step is
  rewarded by how much it raised an exponentially weighted Sharpe ratio of the episode's
  returns, so a gain bought with volatility counts for less than a steady one.
- `mtf`: multi-timeframe state: the 1 h state plus 4 h and daily context
  (bot/agent/timeframes.py), from completed higher-timeframe candles only. Hourly data only.
- `levels` / `levels_long`: position levels: the agent picks a fraction of the equity to hold
  (-1, -1/2, 0, +1/2, +1; long-only 0, +1/2, +1) instead of all or nothing (`level_env`).
- `filter_sma` / `filter_analyst`: a trade filter (meta-labelling, Lopez de Prado 2018): a rule
  strategy proposes each trade (the SMA 20/100 cross, or the analyst's positions from one engine
  run), the agent sees the proposal with the market state and, when a proposal opens, takes it,
  halves it or skips it for that trade's whole life (`FilterEnv`); the reward is the equity's log
  growth, so a trade's rewards sum to its net outcome after fees.
- ensembles (`<variant>+ens`): several seeds' networks trading as one, by their averaged
  Q-values (`EnsembleAgent`); built by the protocol from the members it trained anyway, and
  shipped as one checkpoint (`EnsembleQ`: the members' networks in one module).

Every variant trains through plain autograd (`DQNConfig.learner = "autograd"`); the numpy
learner is the tested-equal fast path of the one architecture all of them share.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from bot.agent.environment import MarketData, TradingEnv

__all__ = ["Variant", "VARIANTS", "DifferentialSharpeEnv", "EnsembleAgent", "ENSEMBLE_SUFFIX",
           "LevelEnv", "level_env", "FilterEnv", "PROPOSAL_FEATURES", "with_proposals", "level_position_features"]

ENSEMBLE_SUFFIX = "+ens"
LEVELS = (0.0, 1.0, -1.0, 0.5, -0.5)        # flat, long, short, half long, half short
LONG_LEVELS = (0.0, 1.0, 0.5)
PROPOSAL_FEATURES = ("proposal_side", "proposal_entry", "proposal_age")


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
    levels: tuple[float, ...] | None = None                    # position levels, one per action
    proposals: str | None = None                               # trade filter over "sma" / "analyst"
    hourly_only: bool = False                                  # needs hourly candles

    def trade_env(self) -> type[TradingEnv]:
        """How actions become positions (the environment the agent is judged in)."""
        if self.proposals:
            return FilterEnv
        return level_env(self.levels) if self.levels else TradingEnv

    def env_class(self) -> type[TradingEnv]:
        """The training environment: the trading one, or its differential-Sharpe reward."""
        return DifferentialSharpeEnv if self.reward == "dsr" else self.trade_env()


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("baseline", "the current agent: flat/long/short, log-equity reward, 1 h state"),
    Variant("long_only", "flat/long only (as on spot)", settings={"EXCHANGE_CATEGORY": "spot", "LEVERAGE": 1.0}),
    Variant("dsr", "differential Sharpe ratio reward (Moody & Saffell)", reward="dsr"),
    Variant("mtf", "1 h state + 4 h and daily context (completed candles)", timeframes=True, servable=False,
            hourly_only=True),
    # live orders are all-or-nothing (Decision.target is -1, 0 or +1): levels cannot be served yet
    Variant("levels", "position levels -1, -1/2, 0, +1/2, +1 of the equity", levels=LEVELS, servable=False),
    Variant("levels_long", "position levels 0, +1/2, +1 (long only)", levels=LONG_LEVELS, servable=False),
    # the live strategy would need the proposer running beside it: not served yet
    Variant("filter_sma", "trade filter: take / halve / skip each SMA 20/100 long proposal", proposals="sma",
            servable=False, config={"min_hold": 0, "switch_margin": 0.0}),
    Variant("filter_analyst", "trade filter: take / halve / skip each analyst trade", proposals="analyst",
            servable=False, hourly_only=True, config={"min_hold": 0, "switch_margin": 0.0}),
)}


def level_position_features(position: Any, upnl_pct: Any, held: Any) -> np.ndarray:
    """The position features for a fraction of the equity: the flat / long / short columns hold
    the fraction (1 / 0 / 0 flat, 0 / 0.5 / 0 half long), the rest as `features.position_features`;
    for -1, 0, +1 they are exactly those (tested)."""
    from bot.analysis import features as F

    pos = np.asarray(position, np.float64)
    upnl = np.asarray(upnl_pct, np.float64)
    h = np.asarray(held, np.float64)
    pos, upnl, h = np.broadcast_arrays(pos, upnl, h)
    out = np.empty(pos.shape + (F.N_POSITION_FEATURES,), np.float64)
    out[..., 0] = pos == 0
    out[..., 1] = np.maximum(pos, 0.0)
    out[..., 2] = np.maximum(-pos, 0.0)
    out[..., 3] = np.tanh(np.nan_to_num(upnl) / F.UPNL_SCALE_PCT)
    out[..., 4] = h / (h + F.HELD_HALF_LIFE)
    return out.astype(np.float32)


class LevelEnv(TradingEnv):
    """A TradingEnv whose actions are fractions of the equity (`TARGETS`, made by `level_env`).
    A change of level closes the position and opens the new one at the same open: fees and
    slippage on both legs (more than a partial trade would cost: the conservative reading)."""

    TARGETS = np.asarray(LEVELS, np.float64)

    def __init__(self, data: Any, **kwargs: Any) -> None:
        kwargs["allow_short"] = bool(np.any(self.TARGETS < 0))
        super().__init__(data, **kwargs)
        self.n_actions = self.n_positions = len(self.TARGETS)

    def position_features(self, position: Any, upnl_pct: Any, held: Any) -> np.ndarray:
        return level_position_features(position, upnl_pct, held)


@cache
def level_env(levels: tuple[float, ...]) -> type[LevelEnv]:
    """The LevelEnv of these levels (one class per tuple, so it pickles by name in a worker)."""
    if levels == LEVELS:
        return LevelEnv
    if levels == LONG_LEVELS:
        return LongLevelEnv
    raise ValueError(f"no environment for the levels {levels}; known: {LEVELS}, {LONG_LEVELS}")


class LongLevelEnv(LevelEnv):
    TARGETS = np.asarray(LONG_LEVELS, np.float64)


def with_proposals(data: MarketData, sides: np.ndarray) -> MarketData:
    """`data` with a rule strategy's proposals added to its features: the side it wants at each
    candle's close (-1, 0, +1; decided on candles up to that close), whether that is a new
    trade (its side changed to a position), and the trade's age (candles / (candles + 24))."""
    sides = np.asarray(sides, np.float64)
    if sides.shape != data.close.shape:
        raise ValueError(f"{len(sides)} proposals for {len(data.close)} candles")
    entry = np.zeros(len(sides), bool)
    age = np.zeros(len(sides))
    for first, last in data.segments:   # per frame, from its first usable candle (episodes start there)
        run, prev = 0, 0.0
        for i in range(int(first), int(last) + 1):   # once per data set: a plain loop is fine
            entry[i] = sides[i] != 0 and sides[i] != prev
            run = 0 if sides[i] == 0 or entry[i] else run + 1
            age[i], prev = run, sides[i]
    extra = np.stack([sides, entry, age / (age + 24.0)], axis=1).astype(np.float32)
    return dataclasses.replace(data, features=np.concatenate([data.features, extra], axis=1),
                               feature_names=data.feature_names + PROPOSAL_FEATURES)


class FilterEnv(LevelEnv):
    """The trade filter: the proposal (`proposal_side` of the features) sets the side, the agent's
    action when a proposal opens sets the size for that trade's life: 0 skip, 1 half, 2 take.
    While no proposal opens, the action changes nothing. The state's `proposal_entry` column says
    when the agent's action counts (a proposal open at an episode's start counts as new)."""

    FRACTIONS = np.array([0.0, 0.5, 1.0])

    def __init__(self, data: Any, **kwargs: Any) -> None:
        names = list(data.feature_names)
        if "proposal_side" not in names:
            raise ValueError("the trade filter needs proposals in the market data (with_proposals)")
        self._side_col, self._entry_col = names.index("proposal_side"), names.index("proposal_entry")
        self._sides = np.asarray(data.features[:, self._side_col], np.float64)
        super().__init__(data, **kwargs)
        self.n_actions = len(self.FRACTIONS)
        self._lock = np.zeros(self.n_envs)      # side of the proposal whose size is chosen
        self._frac = np.zeros(self.n_envs)      # the size chosen for it

    def reset(self, **kwargs: Any) -> np.ndarray:
        self._lock, self._frac = np.zeros(self.n_envs), np.zeros(self.n_envs)
        return super().reset(**kwargs)

    def observe(self) -> np.ndarray:
        obs = super().observe()
        p = self._sides.take(self.t)
        obs[:, self._entry_col] = (p != 0) & (p != self._lock)
        return obs

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        a = np.array(actions, dtype=np.int64).reshape(self.n_envs)
        if a.view(np.uint64).max() >= self.n_actions:
            raise ValueError(f"trade-filter actions must be in 0..{self.n_actions - 1} (skip, halve, take)")
        p = self._sides.take(self.t)
        new = (p != 0) & (p != self._lock)
        self._frac = np.where(p == 0, 0.0, np.where(new, self.FRACTIONS.take(a), self._frac))
        self._lock = p
        level = p * self._frac
        idx = np.select([level == 1.0, level == -1.0, level == 0.5, level == -0.5], [1, 2, 3, 4], 0)
        obs, reward, term, trunc, info = super().step(idx)
        info["level_action"], info["action"] = info["action"], a
        done = term | trunc
        if done.any():   # the finished episodes restarted inside step: no proposal sized yet
            self._lock = np.where(done, 0.0, self._lock)
            self._frac = np.where(done, 0.0, self._frac)
            obs = self.observe()
        return obs, reward, term, trunc, info



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
        self.trade_env = getattr(lead, "trade_env", TradingEnv)
        self.levels = getattr(lead, "levels", None)

    def q_values(self, state: np.ndarray) -> np.ndarray:
        return np.mean([m.q_values(state) for m in self.members], axis=0)

    def act(self, state: np.ndarray, *, epsilon: float | None = None) -> Any:
        s = np.asarray(state, np.float32)
        batch = s.reshape(-1, self.state_dim)
        action = self.members[0].greedy(self.q_values(batch), batch)
        return int(action[0]) if s.ndim == 1 else action

    def to_bot(self, meta: dict[str, Any] | None = None) -> Any:
        """One agent holding every member's network (`EnsembleQ`: their mean Q-values), with the
        first member's settings, rules and counters: what `make model` saves as one checkpoint and
        `DQNStrategy` loads like any other (`SelfLearningBot.load` rebuilds the ensemble)."""
        import copy

        from bot.agent.network import EnsembleQ
        from bot.agent.self_learning import SelfLearningBot

        lead = self.members[0]
        bot = SelfLearningBot(lead.settings, config=lead.config.replace(learner="autograd"),
                              state_dim=self.state_dim, n_actions=self.n_actions, feature_names=self.feature_names)
        bot.q = EnsembleQ([copy.deepcopy(m.q) for m in self.members])
        bot.q_target = EnsembleQ([copy.deepcopy(m.q_target) for m in self.members])
        bot._make_optimizer()
        bot.trade_env, bot.levels = lead.trade_env, lead.levels
        bot.env_steps, bot.gradient_steps = lead.env_steps, lead.gradient_steps
        bot._eps_from, bot._eps_len, bot._eps_start = lead._eps_from, lead._eps_len, lead._eps_start
        bot.meta = dict(meta or {})
        return bot
