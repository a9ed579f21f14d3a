"""Training speed against the tools people use today, in the same run, as ratios.

    .venv/bin/pip install -r requirements-bench.txt
    .venv/bin/python bench/train.py [--env-steps 200000] [--train-steps 60000] [--sb3-steps 20000] [--repeat 3]

Measures, on the real BTC hourly seed candles:
1. environment throughput: our TradingEnv with 64 parallel episodes (random actions) vs
   gym-anytrading's `stocks-v0` (one env, random actions) over the same closes;
2. training throughput: our SelfLearningBot.train (64 episodes, one gradient step per 4
   environment steps) vs stable-baselines3 DQN (`MlpPolicy`, train_freq=4, gradient_steps=1)
   on `stocks-v0`, both counted in environment steps per second, learning_starts equal.
Both learners get one torch thread (the best setting for small nets on 2 cores, for both).

The cores are shared with other work, so every figure is the best of `--repeat` runs, ours and
the peer's alternating (best-of-N: other jobs only ever slow a run down); each is also given
per second of this process's CPU time (all threads), which other jobs disturb less and which
would show any hidden multi-threading.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def ours_env(frame, settings, steps: int, n_envs: int = 64, bookkeeping: bool = False) -> float:
    import numpy as np

    from bot.agent.environment import MarketData, TradingEnv

    env = TradingEnv(MarketData.from_frames(frame, settings=settings), settings=settings, n_envs=n_envs, seed=1,
                     bookkeeping=bookkeeping)
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, env.n_actions, (steps // n_envs + 1, n_envs))
    t0, c0 = time.perf_counter(), time.process_time()
    for a in actions:
        env.step(a)
    return _rates(len(actions) * n_envs, t0, c0)


def anytrading_env(frame, window: int, steps: int) -> float:
    import gym_anytrading  # noqa: F401  (registers stocks-v0)
    import gymnasium as gym

    env = gym.make("stocks-v0", df=_anytrading_frame(frame), window_size=window,
                   frame_bound=(window, len(frame)))
    env.reset(seed=0)
    env.action_space.seed(0)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    return _rates(steps, t0, c0)


def _rates(steps: int, t0: float, c0: float) -> tuple[float, float]:
    """(steps per wall-clock second, steps per CPU second of this process)."""
    return steps / (time.perf_counter() - t0), steps / max(time.process_time() - c0, 1e-9)


def best_of(repeat: int, *runs: Callable[[], tuple]) -> list[tuple]:
    """Each run `repeat` times, alternating; per run the best (highest) of every figure."""
    results: list[list[tuple]] = [[] for _ in runs]
    for _ in range(repeat):
        for out, run in zip(results, runs, strict=True):
            out.append(run())
    return [tuple(max(col) if isinstance(col[0], float) else col[0] for col in zip(*out, strict=True))
            for out in results]


def ours_train(frame, settings, steps: int, learning_starts: int) -> tuple[float, float, int, str]:
    from bot.agent.self_learning import DQNConfig, SelfLearningBot

    agent = SelfLearningBot(settings, config=DQNConfig(seed=1, learning_starts=learning_starts))
    env = agent.make_env(frame)
    c0 = time.process_time()
    res = agent.train(env, steps, progress=False)
    cpu = res.env_steps / max(time.process_time() - c0, 1e-9)
    cfg = agent.config
    shape = f"batch {cfg.batch_size}, {'x'.join(map(str, cfg.hidden))} dueling, {cfg.n_step}-step double DQN"
    return res.steps_per_second, cpu, res.gradient_steps, shape


def sb3_train(frame, window: int, steps: int, learning_starts: int) -> tuple[float, float, int]:
    import gym_anytrading  # noqa: F401
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    env = gym.make("stocks-v0", df=_anytrading_frame(frame), window_size=window, frame_bound=(window, len(frame)))
    model = DQN("MlpPolicy", env, learning_starts=learning_starts, train_freq=4, gradient_steps=1, seed=1,
                verbose=0, device="cpu")
    t0, c0 = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps)
    return (*_rates(steps, t0, c0), int(model._n_updates))


def _anytrading_frame(frame):
    df = frame.rename(columns=str.capitalize).reset_index(drop=True)
    return df[["Open", "High", "Low", "Close", "Volume"]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-steps", type=int, default=200_000, help="environment steps per env benchmark")
    p.add_argument("--anytrading-steps", type=int, default=50_000, help="gym-anytrading steps")
    p.add_argument("--train-steps", type=int, default=60_000, help="environment steps of our training")
    p.add_argument("--sb3-steps", type=int, default=20_000, help="environment steps of SB3 DQN training")
    p.add_argument("--learning-starts", type=int, default=2_000, help="steps before learning, both learners")
    p.add_argument("--repeat", type=int, default=3, help="runs of every measurement; the best counts")
    args = p.parse_args(argv)

    from bot.market.seed import load_seed
    from config import load_settings

    settings = load_settings(None, environ={}, HISTORICAL_DATA_PATH=str(ROOT / "historical_data" / "bench"))
    frame = load_seed("BTCUSDT", "60")
    window = settings.STATE_WINDOW
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpu(s); "
          f"{len(frame)} real BTC hourly candles")
    print("command: .venv/bin/python bench/train.py " + " ".join(argv if argv is not None else sys.argv[1:]))

    n = max(args.repeat, 1)
    print(f"every figure: best of {n} runs, ours and the peer's alternating; [per CPU second]")
    (ours, ours_c), (full, full_c), (peer, peer_c) = best_of(
        n, lambda: ours_env(frame, settings, args.env_steps),
        lambda: ours_env(frame, settings, args.env_steps, bookkeeping=True),
        lambda: anytrading_env(frame, window, args.anytrading_steps))
    print(f"environment: ours {ours:,.0f} steps/s (64 episodes, as in training) | gym-anytrading stocks-v0 "
          f"{peer:,.0f} steps/s (1 env) | ratio {ours / peer:.1f}x (target >= 10x) "
          f"[CPU: {ours_c:,.0f} vs {peer_c:,.0f} = {ours_c / peer_c:.1f}x]")
    print(f"             (with per-step fee and trade bookkeeping, as in evaluation: {full:,.0f} steps/s = "
          f"{full / peer:.1f}x [CPU {full_c / peer_c:.1f}x])")
    wide = {k: ours_env(frame, settings, args.env_steps * 2, k)[0] for k in (256, 1024)}
    print("             (not the target, how it scales, one run each: " + ", ".join(
        f"{k} episodes {v:,.0f} steps/s = {v / peer:.1f}x" for k, v in wide.items()) + ")")

    (ours_t, ours_tc, ours_g, shape), (peer_t, peer_tc, peer_g) = best_of(
        n, lambda: ours_train(frame, settings, args.train_steps, args.learning_starts),
        lambda: sb3_train(frame, window, args.sb3_steps, args.learning_starts))
    print(f"training:    ours {ours_t:,.0f} env steps/s ({ours_g} gradient steps; {shape}) | "
          f"SB3 DQN {peer_t:,.0f} env steps/s ({peer_g} gradient steps; batch 32, 64x64, defaults) | "
          f"ratio {ours_t / peer_t:.1f}x (target >= 5x) [CPU: {ours_tc:,.0f} vs {peer_tc:,.0f} = "
          f"{ours_tc / peer_tc:.1f}x]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
