"""SelfLearningBot: the DQN agent that picks a target position (flat / long / short).

Reads top to bottom like CleanRL's `dqn.py`: hyperparameters, network, replay buffer, target,
loss, update; then acting, offline training on candles, online learning, and checkpoints.

Deviations from the DQN paper (Mnih et al. 2015), each named where it happens:
- Double DQN targets (van Hasselt 2016): the online net picks the next action, the target net
  values it -> `_td_targets`.
- Dueling head (Wang 2016): Q = V + A - mean(A) -> `QNetwork.forward`.
- n-step returns (Sutton 1988; Rainbow): rewards summed over `n_step` steps inside one episode
  -> `ReplayBuffer.sample`.
- Huber loss, gradient-norm clipping and Adam -> `NumpyLearner` (used by `learn`): the
  backward pass is written out by hand (torch reference `QNetwork.huber_grads`) and computed in
  numpy on the parameters' own memory, then torch's fused Adam kernel; tests check it against
  autograd + clip_grad_norm_ + Adam. Autograd and torch's per-call cost dominate at this size.
- Soft (Polyak) target updates by default; periodic hard copies when `target_period > 0`.
- Time-limit truncation bootstraps (an episode's end is an arbitrary cut, not a terminal state).
- Rewards are scaled by `reward_scale` (per-candle log returns are ~1e-3) and states are
  standardised with mean / std measured on the training candles, stored in the network.
- No frame stacking or CNN: the state vector (bot/analysis/features.py) already holds the recent window.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bot.agent.checkpoints import SHIPPED_MODEL, CheckpointStore, ExperienceLog
from bot.agent.environment import MarketData, TradingEnv
from bot.agent.network import EnsembleQ, QNetwork
from bot.agent.numpy_learner import NumpyLearner
from bot.agent.numpy_q import f32
from bot.errors import CheckpointError

__all__ = ["DQNConfig", "ReplayBuffer", "SelfLearningBot", "TrainResult"]

log = logging.getLogger("bot.agent")


# ----------------------------------------------------------------------------------------------
# hyperparameters

@dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of the DQN learner."""

    seed: int = 7
    """seed of torch, numpy and the environment's episode starts"""
    hidden: tuple[int, ...] = (64, 64)
    """widths of the hidden layers of the shared trunk"""
    learning_rate: float = 5e-4
    """Adam learning rate"""
    gamma: float = 0.99
    """discount per candle"""
    n_step: int = 3
    """steps summed into one return before bootstrapping"""
    buffer_size: int = 200_000
    """transitions the replay buffer holds (preallocated numpy arrays)"""
    batch_size: int = 64
    """transitions per gradient step"""
    learning_starts: int = 5_000
    """environment steps of experience before the first gradient step"""
    train_every: int = 4
    """environment steps per gradient step (replay ratio 1/4)"""
    target_tau: float = 0.005
    """Polyak factor of the soft target update after every gradient step"""
    target_period: int = 0
    """if > 0: hard-copy the online net into the target net every this many gradient steps instead"""
    max_grad_norm: float = 10.0
    """gradient norm clip"""
    epsilon_start: float = 1.0
    """exploration rate at the start of a schedule"""
    epsilon_end: float = 0.05
    """exploration rate at the end of a schedule"""
    exploration_fraction: float = 0.5
    """fraction of an offline `train()` run over which epsilon decays"""
    online_decay_steps: int = 20_000
    """steps of online learning over which epsilon decays (paper trading)"""
    eval_epsilon: float = 0.0
    """exploration when not training: greedy, no random trades in evaluation or live"""
    reward_scale: float = 100.0
    """multiplier of the reward before learning (1 % of equity = reward 1)"""
    n_envs: int = 64
    """parallel episodes in offline training"""
    min_hold: int = 24
    """candles a position is held before the agent may change it (against overtrading)"""
    switch_margin: float = 0.5
    """Q advantage (scaled reward units) a new position needs over the current one to be taken"""
    train_trade_penalty: float = 0.002
    """offline training only: reward penalty per position change on top of fees (vs overtrading)"""
    torch_threads: int = 1
    """torch CPU threads: small nets run fastest on one (the machine has 2 shared cores)"""
    learner: str = "numpy"
    """gradient step: "autograd" (plain torch: loss.backward, clip_grad_norm_, Adam; any network)
    or "numpy" (the hand-written fast path for the dueling MLP, tested equal to autograd)"""
    online_epsilon_start: float = 0.1
    """exploration when online learning starts from a trained network (paper trading); an
    untrained one starts from `epsilon_start`"""

    def __post_init__(self) -> None:
        if self.learner not in ("numpy", "autograd"):
            raise ValueError(f"learner {self.learner!r} is not known; allowed: numpy, autograd")

    def replace(self, **changes: Any) -> "DQNConfig":
        fields = {f.name for f in dataclasses.fields(self)}
        for k in changes:
            if k not in fields:
                import difflib

                close = difflib.get_close_matches(k, fields, n=1)
                raise ValueError(f"unknown DQN setting {k!r}" + (f"; did you mean {close[0]}?" if close else ""))
        return dataclasses.replace(self, **changes)


# network: bot/agent/network.py (QNetwork, dueling MLP with its hand-written Huber backward pass)


# ----------------------------------------------------------------------------------------------
# replay buffer: one column per parallel episode, so n-step returns read down a column

class ReplayBuffer:
    """Preallocated circular buffer of (state, action, reward, next_state, done, terminal)."""

    def __init__(self, capacity: int, n_envs: int, state_dim: int, *, n_step: int, gamma: float) -> None:
        self.slots = max(capacity // n_envs, n_step + 1)
        self.n_envs, self.n_step, self.gamma = n_envs, n_step, gamma
        self.state = np.zeros((self.slots, n_envs, state_dim), np.float32)
        self.next_state = np.zeros((self.slots, n_envs, state_dim), np.float32)
        self.action = np.zeros((self.slots, n_envs), np.int64)
        self.reward = np.zeros((self.slots, n_envs), np.float32)
        self.done = np.zeros((self.slots, n_envs), bool)       # episode ended (either way)
        self.terminal = np.zeros((self.slots, n_envs), bool)   # ended for real: no bootstrap
        self.cursor = 0
        self.filled = 0

    def __len__(self) -> int:
        return self.filled * self.n_envs

    def add(self, state: np.ndarray, action: np.ndarray, reward: np.ndarray, next_state: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray) -> None:
        i = self.cursor
        self.state[i], self.action[i], self.reward[i], self.next_state[i] = state, action, reward, next_state
        self.terminal[i] = terminated
        self.done[i] = np.logical_or(terminated, truncated)
        self.cursor = (i + 1) % self.slots
        self.filled = min(self.filled + 1, self.slots)

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """(state, action, n-step return, bootstrap state, bootstrap discount) for `batch` draws."""
        usable = self.filled - self.n_step + 1     # the newest slots lack their n-step future yet
        oldest = self.cursor if self.filled == self.slots else 0
        slot = (oldest + rng.integers(0, max(usable, 1), batch)) % self.slots
        env = rng.integers(0, self.n_envs, batch)
        n = self.n_envs   # flat indices (slot * n + env) into the arrays seen as one long column:
        reward, done = self.reward.reshape(-1), self.done.reshape(-1)   # np.take beats 2-D indexing
        first = slot * n + env
        ret = np.zeros(batch, np.float32)
        disc = np.ones(batch, np.float32)
        alive = np.ones(batch, bool)
        last = first
        for k in range(self.n_step):  # n-step return, cut at the end of the episode
            ik = first if k == 0 else (slot + k) % self.slots * n + env
            ret += np.where(alive, disc * reward.take(ik), 0.0)
            last = np.where(alive, ik, last)
            disc = np.where(alive, disc * self.gamma, disc)
            alive &= ~done.take(ik)
        disc = disc * ~self.terminal.reshape(-1).take(last)
        dim = self.state.shape[-1]
        return (self.state.reshape(-1, dim).take(first, axis=0), self.action.reshape(-1).take(first), ret,
                self.next_state.reshape(-1, dim).take(last, axis=0), disc)


@dataclass(frozen=True)
class TrainResult:
    """What an offline training run did."""

    env_steps: int
    gradient_steps: int
    episodes: int
    mean_episode_return: float     # growth of the last finished episodes, fraction
    last_loss: float
    seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.seconds if self.seconds > 0 else 0.0


# ----------------------------------------------------------------------------------------------
# the agent

class SelfLearningBot:
    """DQN agent. `act(state)` decides; `train(frames, steps)` pre-trains on candles;
    `observe(...)` + `learn()` learn online; `save()` / `load()` checkpoint it."""

    def __init__(self, settings: Any, *, config: DQNConfig | None = None, state_dim: int | None = None,
                 n_actions: int | None = None, feature_names: Sequence[str] | None = None) -> None:
        from bot.analysis import features as Fe

        self.settings = settings
        self.config = config or DQNConfig(seed=settings.SEED)
        cfg = self.config
        torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        if feature_names is None:
            feature_names = (list(Fe.market_feature_names(settings.STATE_WINDOW))
                             + list(Fe.position_feature_names()))
        self.feature_names = tuple(feature_names)
        self.state_dim = int(state_dim or len(self.feature_names))
        self.n_actions = int(n_actions or (3 if settings.allows_short else 2))
        # one-hot position columns of the state, in action order (flat, long, short)
        cols = [self.feature_names.index(n) for n in ("pos_flat", "pos_long", "pos_short")
                if n in self.feature_names]
        self._position_cols = cols if len(cols) == 3 else None
        # how actions become positions: the environment it trains and is judged in, and (position
        # levels, bot/agent/variants.py) the fraction of the equity each action holds
        self.trade_env: type[TradingEnv] = TradingEnv
        self.levels: tuple[float, ...] | None = None
        self.q = QNetwork(self.state_dim, self.n_actions, cfg.hidden)
        self.q_target = QNetwork(self.state_dim, self.n_actions, cfg.hidden)
        self.q_target.load_state_dict(self.q.state_dict())
        self._make_optimizer()
        self.training = bool(settings.TRAINING_ENABLED)
        self.env_steps = 0              # environment steps seen (offline + online)
        self.gradient_steps = 0
        self.last_loss = float("nan")
        self._eps_from, self._eps_len = 0, max(cfg.online_decay_steps, 1)   # the current epsilon schedule
        self._eps_start = cfg.epsilon_start
        self._online_schedule = False   # True once the live (online) schedule runs: a restart keeps it
        self.buffer: ReplayBuffer | None = None
        self.store = CheckpointStore(Path(settings.data_dir) / "models", keep=settings.CHECKPOINTS_KEPT,
                                     fallback=SHIPPED_MODEL if getattr(settings, "DQN_SHIPPED_MODEL", True) else None)
        self.experience: ExperienceLog | None = None
        self.meta: dict[str, Any] = {}   # what a checkpoint says about itself (name, walk-forward record)

    def _make_optimizer(self) -> None:
        # fused Adam: one kernel for all parameters, the biggest single saving per gradient step
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=self.config.learning_rate, fused=True)
        self._online_params = list(self.q.parameters())
        self._target_params = list(self.q_target.parameters())
        self._np: NumpyLearner | None = None   # built at the first gradient step

    # -- exploration ----------------------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        """Current exploration rate (linear decay); `eval_epsilon` when not training."""
        cfg = self.config
        if not self.training:
            return cfg.eval_epsilon
        frac = min(max(self.env_steps - self._eps_from, 0) / self._eps_len, 1.0)
        start = self._eps_start   # epsilon_start, or online_epsilon_start for a trained network
        return start + frac * (min(cfg.epsilon_end, start) - start)

    def fit_normalisation(self, states: np.ndarray) -> None:
        """Standardise inputs with the mean / std of these (training) states."""
        s = np.asarray(states, np.float64)
        mean, std = s.mean(axis=0), s.std(axis=0)
        std = np.where(std > 1e-8, std, 1.0)
        for net in (self.q, self.q_target):
            net.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            net.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    # -- acting ---------------------------------------------------------------------------------
    def q_values(self, state: np.ndarray) -> np.ndarray:
        """Q-values for one state (A,) or a batch (N, A)."""
        s = np.asarray(state, np.float32)
        with torch.inference_mode():
            q = self.q(torch.from_numpy(s.reshape(-1, self.state_dim))).numpy()
        return q[0] if s.ndim == 1 else q

    def greedy(self, q: np.ndarray, states: np.ndarray) -> np.ndarray:
        """argmax Q, except that the current position is kept unless another beats it by
        `switch_margin` (hysteresis: small, noisy Q differences must not pay a fee)."""
        best = q.argmax(axis=1)
        if self.config.switch_margin <= 0 or self._position_cols is None:
            return best
        pos = states[:, self._position_cols]
        if self.levels is None:
            current = pos.argmax(axis=1)[:, None].clip(max=q.shape[1] - 1)
        else:   # the columns hold the fraction held (variants.level_position_features)
            held = pos[:, 1] - pos[:, 2]
            current = np.abs(np.asarray(self.levels)[None, :] - held[:, None]).argmin(axis=1)[:, None]
        q_cur = np.take_along_axis(q, current, axis=1)[:, 0]
        keep = q.max(axis=1) - q_cur < self.config.switch_margin
        return np.where(keep, current[:, 0], best)

    def greedy_row(self, q: Sequence[float], position: Sequence[float] | None) -> int:
        """`greedy` for one state on plain floats, the same choice bit for bit (float32 rounding
        where it rounds, `numpy_q.f32`): `q` its Q-values (float32 values, none NaN; masked
        -inf), `position` the state's position columns (None when it has none). For the live
        loop's one candle, where the array calls cost more than the choice."""
        top = max(q)
        best = q.index(top)
        if self.config.switch_margin <= 0 or self._position_cols is None or position is None:
            return best
        if self.levels is None:
            current = min(position.index(max(position)), len(q) - 1)
        else:
            held = f32(position[1] - position[2])
            gaps = [abs(level - held) for level in self.levels]
            current = gaps.index(min(gaps))
        keep = f32(top - q[current]) < f32(self.config.switch_margin)
        return current if keep else best

    def act(self, state: np.ndarray, *, epsilon: float | None = None) -> Any:
        """Action index (0 flat, 1 long, 2 short) for one state, or an array for a batch;
        epsilon-greedy while training, greedy otherwise."""
        s = np.asarray(state, np.float32)
        batch = s.reshape(-1, self.state_dim)
        eps = self.epsilon if epsilon is None else epsilon
        greedy = self.greedy(self.q_values(batch), batch)
        if eps > 0:
            explore = self.rng.random(len(batch)) < eps
            greedy = np.where(explore, self.rng.integers(0, self.n_actions, len(batch)), greedy)
        return int(greedy[0]) if s.ndim == 1 else greedy

    # -- target and loss ------------------------------------------------------------------------
    def _td_targets(self, returns: torch.Tensor, next_states: torch.Tensor, discounts: torch.Tensor) -> torch.Tensor:
        """n-step Double-DQN targets: R + gamma^m Q_target(s', argmax_a Q_online(s', a)).
        In torch (one thread): numpy's OpenBLAS would spread products this big over threads,
        which on 2 shared cores costs far more than it gains."""
        with torch.no_grad():
            best = self.q(next_states).argmax(dim=1, keepdim=True)          # Double DQN: online picks,
            q_next = self.q_target(next_states).gather(1, best).squeeze(1)  # ... the target net values
            return returns * self.config.reward_scale + discounts * q_next  # discounts = 0 at a terminal

    def _learner(self) -> NumpyLearner:
        if self._np is None:
            self._np = NumpyLearner(self.q, self.q_target, self.optimizer)
        return self._np

    def _update_target(self) -> None:
        cfg = self.config
        with torch.no_grad():
            if cfg.target_period > 0:
                if self.gradient_steps % cfg.target_period == 0:
                    self.q_target.load_state_dict(self.q.state_dict())
            else:  # soft update: target <- target + tau (online - target)
                torch._foreach_lerp_(self._target_params, self._online_params, cfg.target_tau)

    def learn(self, gradient_steps: int = 1) -> float | None:
        """Gradient steps on replayed experience; None while the buffer is still filling.

        Deviation (speed): the targets of the `gradient_steps` steps taken together are computed
        in one pass with the networks as they were before the first of them (one env step of the
        64 parallel episodes asks for 16 steps); with one step it is textbook DQN.
        """
        buf, cfg = self.buffer, self.config
        needed = cfg.learning_starts if buf is not None and buf.n_envs > 1 else cfg.batch_size * 4
        if buf is None or len(buf) < max(needed, cfg.batch_size):
            return None
        b = cfg.batch_size
        s, a, ret, s_n, disc = buf.sample(b * gradient_steps, self.rng)
        if cfg.learner == "autograd":
            return self._learn_autograd(s, a, ret, s_n, disc, gradient_steps)
        nl = self._learner()
        targets = self._td_targets(*(torch.from_numpy(v) for v in (ret, s_n, disc))).numpy()
        x = nl.normalise(nl.online, s)
        loss = None
        for k in range(gradient_steps):
            sl = slice(k * b, (k + 1) * b)
            loss = nl.huber_grads(x[sl], a[sl], targets[sl], with_loss=k == gradient_steps - 1)   # Huber
            nl.clip_and_step(cfg.max_grad_norm)                                                  # clip, Adam
            self.gradient_steps += 1
            self._update_target()
        self.last_loss = float(loss)
        return self.last_loss

    def _learn_autograd(self, s: np.ndarray, a: np.ndarray, ret: np.ndarray, s_n: np.ndarray, disc: np.ndarray,
                        gradient_steps: int) -> float:
        """The same update as the numpy fast path, in plain torch: Huber loss, `backward()`,
        `clip_grad_norm_`, Adam; it trains any network, not only the dueling MLP."""
        cfg, b = self.config, self.config.batch_size
        targets = self._td_targets(*(torch.from_numpy(v) for v in (ret, s_n, disc)))
        states, actions = torch.from_numpy(s), torch.from_numpy(a)
        loss = torch.zeros(())
        for k in range(gradient_steps):
            sl = slice(k * b, (k + 1) * b)
            q = self.q(states[sl]).gather(1, actions[sl, None]).squeeze(1)
            loss = torch.nn.functional.smooth_l1_loss(q, targets[sl])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.q.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.gradient_steps += 1
            self._update_target()
        self.last_loss = float(loss.detach())
        return self.last_loss

    # -- offline training on candles ------------------------------------------------------------
    def make_env(self, frames: pd.DataFrame | Sequence[pd.DataFrame] | MarketData, *,
                 env_class: type[TradingEnv] | None = None, **options: Any) -> TradingEnv:
        """A training environment over `frames` with this agent's settings (`env_class`: a
        TradingEnv or a subclass of it, such as another reward's; default `trade_env`)."""
        env_class = env_class or self.trade_env
        data = frames if isinstance(frames, MarketData) else MarketData.from_frames(
            frames, settings=self.settings)
        if "reward" not in options:
            from bot.agent.reward_system import RewardSystem

            options["reward"] = RewardSystem.from_settings(
                self.settings, trade_penalty=self.settings.REWARD_TRADE_PENALTY + self.config.train_trade_penalty)
        opts = {"n_envs": self.config.n_envs, "min_hold": self.config.min_hold,
                "seed": self.config.seed + self.env_steps,   # fresh episode starts on every call
                "allow_short": self.n_actions == 3, "bookkeeping": False}   # training needs no fee reports
        opts.update(options)
        env = env_class(data, settings=self.settings, **opts)
        if env.state_dim != self.state_dim:
            raise CheckpointError(f"the environment's state has {env.state_dim} features but the agent "
                                  f"expects {self.state_dim}; the feature set changed: retrain")
        return env

    def train(self, frames: pd.DataFrame | Sequence[pd.DataFrame] | MarketData | TradingEnv, steps: int, *,
              progress: bool = True, evaluate: Callable[["SelfLearningBot"], float] | None = None,
              eval_every: int = 0, keep_best: bool = False, fit_normalisation: bool = True,
              **env_options: Any) -> TrainResult:
        """Pre-train for `steps` environment steps (summed over the parallel episodes).

        `evaluate(agent) -> return` runs every `eval_every` steps (shown as `eval`); with
        `keep_best` the network that scored best (at those points or at the end) is kept:
        early stopping on held-out candles, when `evaluate` looks at candles not trained on."""
        from tqdm import tqdm

        env = frames if isinstance(frames, TradingEnv) else self.make_env(frames, **env_options)
        cfg = self.config
        if fit_normalisation and self.gradient_steps == 0:
            segs = env.data.segments
            rows = np.concatenate([np.arange(a, b) for a, b in segs])
            market = env.data.features[rows]
            pos_dim = self.state_dim - market.shape[1]
            self.fit_normalisation(np.concatenate([market, np.zeros((len(market), pos_dim))], axis=1))
            for net in (self.q, self.q_target):  # position features are already O(1): leave them
                net.std[market.shape[1]:] = 1.0
        if self.buffer is None or self.buffer.n_envs != env.n_envs:
            self.buffer = ReplayBuffer(cfg.buffer_size, env.n_envs, self.state_dim, n_step=cfg.n_step,
                                       gamma=cfg.gamma)
        was_training, self.training = self.training, True
        self._eps_from, self._eps_len = self.env_steps, max(int(steps * cfg.exploration_fraction), 1)
        self._eps_start = cfg.epsilon_start
        self._online_schedule = False
        grad_per_step = max(env.n_envs // cfg.train_every, 1)
        state = env.reset()
        returns: list[float] = []
        episodes, done_steps, eval_ret = 0, 0, float("nan")
        best_ret, best_state = -np.inf, None
        t0 = time.perf_counter()
        bar = tqdm(total=steps, unit="step", unit_scale=True, disable=not progress, desc="train", leave=False)
        try:
            while done_steps < steps:
                action = self.act(state)
                next_state, reward, term, trunc, info = env.step(action)
                ended = term | trunc
                final = np.where(ended[:, None], info["final_state"], next_state) if ended.any() else next_state
                self.buffer.add(state, info["action"], reward, final, term, trunc)
                state = next_state
                self.env_steps += env.n_envs
                done_steps += env.n_envs
                if ended.any():
                    finished = info["episode_return"][ended]
                    returns.extend(finished.tolist())
                    episodes += len(finished)
                self.learn(grad_per_step)
                if evaluate is not None and eval_every and (done_steps // env.n_envs) % max(
                        eval_every // env.n_envs, 1) == 0:
                    eval_ret = evaluate(self)
                    if keep_best and eval_ret > best_ret:
                        best_ret, best_state = eval_ret, {k: v.clone() for k, v in self.q.state_dict().items()}
                bar.update(env.n_envs)
                if progress and (done_steps // env.n_envs) % 20 == 0:
                    bar.set_postfix(loss=f"{self.last_loss:.4f}", eps=f"{self.epsilon:.2f}",
                                    ep_ret=f"{np.mean(returns[-50:]) if returns else float('nan'):+.3f}",
                                    eval=f"{eval_ret:+.3f}", refresh=False)
        finally:
            bar.close()
            self.training = was_training
        if keep_best and evaluate is not None and best_state is not None and evaluate(self) < best_ret:
            self.q.load_state_dict(best_state)
            self.q_target.load_state_dict(best_state)
        return TrainResult(done_steps, self.gradient_steps, episodes,
                           float(np.mean(returns[-100:])) if returns else float("nan"), self.last_loss,
                           time.perf_counter() - t0)

    # -- online learning (paper trading) --------------------------------------------------------
    def observe(self, state: np.ndarray, action: int, reward: float, next_state: np.ndarray, done: bool,
                *, symbol: str = "", time_ms: int = 0, terminal: bool = False) -> None:
        """Remember one live transition (replay buffer + the experience log on disk)."""
        cfg = self.config
        if self.buffer is None or self.buffer.n_envs != 1:
            self.buffer = ReplayBuffer(cfg.buffer_size // 4, 1, self.state_dim, n_step=cfg.n_step, gamma=cfg.gamma)
        if not self._online_schedule:   # the first live step after offline training: the online schedule
            self._eps_from, self._eps_len = self.env_steps, max(cfg.online_decay_steps, 1)
            # a trained network explores a little; only an untrained one starts at random
            self._eps_start = cfg.online_epsilon_start if self.gradient_steps > 0 else cfg.epsilon_start
            self._online_schedule = True
        self.buffer.add(np.asarray(state, np.float32)[None], np.array([action]), np.array([reward], np.float32),
                        np.asarray(next_state, np.float32)[None], np.array([terminal]), np.array([done and not terminal]))
        self.env_steps += 1
        if self.experience is None:
            self.experience = ExperienceLog(Path(self.settings.data_dir) / "training")
        self.experience.append(state, action, reward, next_state, done, symbol, time_ms)

    def learn_from_experience(self, experience: pd.DataFrame, gradient_steps: int) -> float | None:
        """Retrain from recorded experience (`bot.agent.checkpoints.load_experience`): the replay buffer
        is refilled with it, symbol by symbol, oldest first, then `gradient_steps` steps are taken.
        A recorded `done` is treated as a cut (bootstrapped), as live trading never truly ends."""
        if len(experience) == 0:
            raise ValueError("no recorded experience to learn from")
        parts = [g.sort_values("time_ms", kind="stable") for _, g in experience.groupby("symbol", sort=True)]
        exp = pd.concat(parts, ignore_index=True)
        states = np.stack(exp["state"].to_numpy()).astype(np.float32)
        if states.shape[1] != self.state_dim:
            raise CheckpointError(f"the recorded states have {states.shape[1]} features but the agent expects "
                                  f"{self.state_dim}; the feature set changed since they were recorded")
        done = exp["done"].to_numpy(bool).copy()
        done[np.cumsum([len(g) for g in parts]) - 1] = True     # never chain one symbol into the next
        cfg = self.config
        n = len(exp)
        self.buffer = buf = ReplayBuffer(max(n, cfg.batch_size * 4), 1, self.state_dim, n_step=cfg.n_step,
                                         gamma=cfg.gamma)
        buf.state[:n, 0], buf.next_state[:n, 0] = states, np.stack(exp["next_state"].to_numpy())
        buf.action[:n, 0], buf.reward[:n, 0], buf.done[:n, 0] = exp["action"], exp["reward"], done
        buf.cursor, buf.filled = n % buf.slots, n
        loss = None
        for _ in range(gradient_steps):
            loss = self.learn()
        return loss

    # -- checkpoints ----------------------------------------------------------------------------
    def config_hash(self) -> str:
        blob = json.dumps({"config": dataclasses.asdict(self.config), "features": self.feature_names,
                           "n_actions": self.n_actions}, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (models/dqn-<steps>.pt unless `path`); keeps the last few."""
        if self.experience is not None:
            self.experience.flush()
        payload = {
            "format": 1, "q": self.q.state_dict(), "q_target": self.q_target.state_dict(),
            "optimizer": self.optimizer.state_dict(), "config": dataclasses.asdict(self.config),
            "feature_names": list(self.feature_names), "state_dim": self.state_dim, "n_actions": self.n_actions,
            "env_steps": self.env_steps, "gradient_steps": self.gradient_steps,
            "eps_schedule": [self._eps_from, self._eps_len, self._eps_start, int(self._online_schedule)],
            "config_hash": self.config_hash(),
            "rng": json.dumps(self.rng.bit_generator.state), "meta": json.dumps(self.meta, default=str),
        }
        if isinstance(self.q, EnsembleQ):   # a seed ensemble: the members' networks, their Q-values averaged
            payload["ensemble"] = len(self.q.members)
        return self.store.save(payload, self.env_steps, path=path)

    def load(self, path: str | Path | None = None) -> Path:
        """Restore weights, optimiser, counters and epsilon from a checkpoint (default: the newest)."""
        p, payload = self.store.load(path)
        names = tuple(payload.get("feature_names", ()))
        if names == self.feature_names and payload.get("n_actions") == 2 and self.n_actions == 3:
            # a long-only agent (flat / long) runs where shorts are allowed: it never shorts
            # (the other way round stays refused: nothing may short on spot)
            self.n_actions = 2
        if names != self.feature_names or payload.get("n_actions") != self.n_actions:
            extra = sorted(set(names) - set(self.feature_names))[:5]
            missing = sorted(set(self.feature_names) - set(names))[:5]
            raise CheckpointError(
                f"checkpoint {p} is incompatible with the current features: it was trained on "
                f"{len(names)} features and {payload.get('n_actions')} actions, the bot now uses "
                f"{len(self.feature_names)} features and {self.n_actions} actions (only in the checkpoint: "
                f"{extra}; only now: {missing}); retrain with `python -m bot train`")
        cfg = payload["config"]
        cfg["hidden"] = tuple(cfg["hidden"])
        self.config = DQNConfig(**cfg)
        members = int(payload.get("ensemble", 0))
        if members:
            self.config = self.config.replace(learner="autograd")   # the numpy fast path is for one network
            self.q, self.q_target = (EnsembleQ([QNetwork(self.state_dim, self.n_actions, self.config.hidden)
                                                for _ in range(members)]) for _ in range(2))
        else:
            self.q = QNetwork(self.state_dim, self.n_actions, self.config.hidden)
            self.q_target = QNetwork(self.state_dim, self.n_actions, self.config.hidden)
        try:
            self.q.load_state_dict(payload["q"])
            self.q_target.load_state_dict(payload["q_target"])
            self._make_optimizer()
            self.optimizer.load_state_dict(payload["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {p} does not fit the network: {exc}") from exc
        self.env_steps, self.gradient_steps = int(payload["env_steps"]), int(payload["gradient_steps"])
        sched = payload["eps_schedule"]
        self._eps_from, self._eps_len = int(sched[0]), int(sched[1])
        # the schedule's start and kind (older checkpoints have neither: an online session would start one)
        trained_start = self.config.online_epsilon_start if self.gradient_steps > 0 else self.config.epsilon_start
        self._eps_start = float(sched[2]) if len(sched) > 2 else trained_start
        self._online_schedule = bool(sched[3]) if len(sched) > 3 else False
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = json.loads(payload["rng"])
        self.meta = json.loads(payload.get("meta") or "{}")
        return p
