"""The trained default the project ships (`make model`): the design the research protocol chose on
its validation spans, trained the protocol's way on all shipped BTC hourly candles, with that
design's walk-forward record (from the research JSON) written into the checkpoint, so the bot
can say which checkpoint it runs and how it did out of sample.

Training: seed `MODEL_SEED`, the protocol's settings for the BTC hourly set (the same env steps
its last fold's agent had in all), the newest span as long as one test fold held out for
early stopping. Deterministic: one thread, seeded, plain autograd.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["make_default_model", "MODEL_SEED", "RECORD_SET"]

MODEL_SEED = 1
RECORD_SET = "BTCUSDT 1h"
COMMAND = "python -m bot research --seeds 8 --folds 3 --out docs/research"


def _member(args: tuple[Any, Any, str, int, tuple[int, int, int], int, int, str]) -> dict[str, Any]:
    """Train one network of the default (a worker process's job): its state dicts and counters."""
    settings, frame, variant, seed, (steps_first, steps_per_fold, folds), val_len, n_envs, learner = args[:8]
    from bot.research.protocol import DataSet, Job, _pin_threads, make_agent, market_data
    from bot.research.walk_forward import greedy_return

    _pin_threads()
    import torch
    torch.use_deterministic_algorithms(True)
    from bot.agent.variants import VARIANTS

    v = VARIANTS[variant]
    job = Job(DataSet(RECORD_SET, "BTCUSDT", "60", frame, ""), variant, seed, settings, (), steps_first,
              steps_per_fold, n_envs=n_envs, config={"learner": learner})
    agent, run_settings = make_agent(job)
    n = len(frame)
    train = market_data(frame.iloc[: n - val_len], run_settings, v.timeframes)
    seen = market_data(frame, run_settings, v.timeframes)
    total = steps_first + (folds - 1) * steps_per_fold
    env = agent.make_env(train, env_class=v.env_class())
    agent.train(env, total, progress=False, evaluate=lambda a: greedy_return(a, seen, candles=val_len),
                eval_every=max(total // job.evals_per_fold, 1), keep_best=True)
    return {"q": agent.q.state_dict(), "q_target": agent.q_target.state_dict(), "env_steps": agent.env_steps,
            "gradient_steps": agent.gradient_steps, "eps": (agent._eps_from, agent._eps_len, agent._eps_start)}


def make_default_model(settings: Any, record_path: Path, model_path: Path, *, progress: bool = False,
                       workers: int = 2) -> Path:
    """Train and save the default; returns the checkpoint's path. An ensemble default
    (`<design>+ens`) is its design trained with seeds MODEL_SEED .. MODEL_SEED + ENSEMBLE_SIZE - 1
    (the protocol's ensemble of seed MODEL_SEED), saved as one checkpoint (`EnsembleQ`)."""
    from bot.agent.variants import ENSEMBLE_SUFFIX, EnsembleAgent
    from bot.errors import DataError
    from bot.market.seed import load_seed
    from bot.research.protocol import DataSet, Job, make_agent
    from bot.research.study import ENSEMBLE_SIZE, local_map

    if not record_path.exists():
        raise DataError(f"no research record at {record_path}; run `{COMMAND}` first")
    record = json.loads(record_path.read_text())
    chosen = record["default"]
    ensemble = chosen.endswith(ENSEMBLE_SUFFIX)
    variant = chosen[: -len(ENSEMBLE_SUFFIX)] if ensemble else chosen
    ds_rec = record["datasets"].get(RECORD_SET)
    if ds_rec is None:
        raise DataError(f"the research record {record_path} has no {RECORD_SET} set")
    steps_first, steps_per_fold = ds_rec["steps"]
    folds = len(ds_rec["splits"])
    frame = load_seed("BTCUSDT", "60")
    val_len = int(ds_rec["splits"][-1]["test_end"]) - int(ds_rec["splits"][-1]["test_start"]) + 1
    n = len(frame)
    n_envs = int(record["settings"].get("n_envs", 64))
    learner = record["settings"].get("learner", "autograd")
    seeds = [MODEL_SEED + k for k in range(int(record["settings"].get("ensemble_size", ENSEMBLE_SIZE)) if ensemble else 1)]
    if progress:
        print(f"training {chosen}: seed(s) {', '.join(map(str, seeds))} on {n - val_len} BTCUSDT 1h candles "
              f"({steps_first + (folds - 1) * steps_per_fold} env steps each)", flush=True)
    args = [(settings, frame, variant, s, (steps_first, steps_per_fold, folds), val_len, n_envs, learner) for s in seeds]
    trained = list(local_map(min(workers, len(seeds)))(_member, args))
    members = []
    for s, t in zip(seeds, trained, strict=True):
        job = Job(DataSet(RECORD_SET, "BTCUSDT", "60", frame, ""), variant, s, settings, (), steps_first,
                  steps_per_fold, n_envs=n_envs, config={"learner": learner})
        m, _ = make_agent(job)
        m.q.load_state_dict(t["q"])
        m.q_target.load_state_dict(t["q_target"])
        m.env_steps, m.gradient_steps = t["env_steps"], t["gradient_steps"]
        m._eps_from, m._eps_len, m._eps_start = t["eps"]
        members.append(m)
    agent = EnsembleAgent(members).to_bot() if ensemble else members[0]
    agent.buffer = None
    seed_key = str(MODEL_SEED)
    res = ds_rec["results"]
    total = steps_first + (folds - 1) * steps_per_fold
    agent.meta = {
        "name": model_path.name, "variant": chosen, "description": (record["settings"]["variant_descriptions"].get(variant) or variant)
        + (f" (ensemble of {len(seeds)} seeds' networks, mean Q-values)" if ensemble else ""),
        "seed": MODEL_SEED, "seeds": seeds, "trained_on": f"BTCUSDT 1h shipped candles {_day(frame.index[0])} .. "
                                          f"{_day(frame.index[n - val_len - 1])} ({n - val_len} candles), "
                                          f"early stopping on the {val_len} after",
        "env_steps": total, "made_by": "make model (python -m bot research --make-model)",
        "walk_forward": {
            "dataset": RECORD_SET, "test_span": ds_rec["test_span"], "command": record.get("command", COMMAND),
            "this_seed": res[chosen]["per_seed"]["test"].get(seed_key),
            "over_seeds": res[chosen]["test"],
            "buy_and_hold": res["buy_and_hold"]["test"], "sma_cross": res["sma_cross"]["test"],
            "equity": ds_rec.get("default_records", {}).get(seed_key),
            "buy_and_hold_equity": ds_rec.get("baseline_records", {}).get("buy_and_hold"),
        },
    }
    model_path.parent.mkdir(parents=True, exist_ok=True)
    return agent.save(model_path)


def _day(ms: Any) -> str:
    import pandas as pd
    return pd.Timestamp(int(np.int64(ms)), unit="ms", tz="UTC").strftime("%Y-%m-%d")
