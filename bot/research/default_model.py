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


def make_default_model(settings: Any, record_path: Path, model_path: Path, *, progress: bool = False) -> Path:
    """Train and save the default; returns the checkpoint's path."""
    from bot.errors import DataError
    from bot.market.seed import load_seed
    from bot.research.protocol import DataSet, Job, _pin_threads, make_agent, market_data
    from bot.research.walk_forward import greedy_return

    _pin_threads()
    import torch
    torch.use_deterministic_algorithms(True)
    if not record_path.exists():
        raise DataError(f"no research record at {record_path}; run `{COMMAND}` first")
    record = json.loads(record_path.read_text())
    variant = record["default"]
    ds_rec = record["datasets"].get(RECORD_SET)
    if ds_rec is None:
        raise DataError(f"the research record {record_path} has no {RECORD_SET} set")
    steps_first, steps_per_fold = ds_rec["steps"]
    folds = len(ds_rec["splits"])
    frame = load_seed("BTCUSDT", "60")
    val_len = int(ds_rec["splits"][-1]["test_end"]) - int(ds_rec["splits"][-1]["test_start"]) + 1
    n = len(frame)
    job = Job(DataSet(RECORD_SET, "BTCUSDT", "60", frame, ""), variant, MODEL_SEED, settings, (), steps_first,
              steps_per_fold, n_envs=int(record["settings"].get("n_envs", 64)),
              evals_per_fold=int(record["settings"].get("evals_per_fold", 10)),
              config={"learner": record["settings"].get("learner", "autograd")})
    from bot.agent.variants import VARIANTS
    v = VARIANTS[variant]
    agent, run_settings = make_agent(job)
    train = market_data(frame.iloc[: n - val_len], run_settings, v.timeframes)
    seen = market_data(frame, run_settings, v.timeframes)
    total = steps_first + (folds - 1) * steps_per_fold
    env = agent.make_env(train, env_class=v.env_class())
    agent.train(env, total, progress=progress, evaluate=lambda a: greedy_return(a, seen, candles=val_len),
                eval_every=max(total // job.evals_per_fold, 1), keep_best=True)
    agent.buffer = None
    seed_key = str(MODEL_SEED)
    res = ds_rec["results"]
    agent.meta = {
        "name": model_path.name, "variant": variant, "description": record["settings"]["variant_descriptions"].get(variant),
        "seed": MODEL_SEED, "trained_on": f"BTCUSDT 1h shipped candles {_day(frame.index[0])} .. "
                                          f"{_day(frame.index[n - val_len - 1])} ({n - val_len} candles), "
                                          f"early stopping on the {val_len} after",
        "env_steps": total, "made_by": "make model (python -m bot research --make-model)",
        "walk_forward": {
            "dataset": RECORD_SET, "test_span": ds_rec["test_span"], "command": COMMAND,
            "this_seed": res[variant]["per_seed"]["test"].get(seed_key),
            "over_seeds": res[variant]["test"],
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
