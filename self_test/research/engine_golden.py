"""The engine path's golden runs: sma and dqn backtests on the real seed candles whose trades and
equity were recorded (self_test/fixtures/engine_golden.json) before the engine step was made fast,
so a speed-up that changes one trade is caught. `python -m self_test.research.engine_golden`
records them again (or into the file named: `... engine_golden /tmp/g.json` to diff; only when a change of trades is intended and explained).

The DQN runs load self_test/fixtures/dqn_golden.pt (a copy of the shipped checkpoint when the
golden was recorded), never historical_data/models/, which training may replace."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "self_test" / "fixtures"
GOLDEN = FIXTURES / "engine_golden.json"
CHECKPOINT = FIXTURES / "dqn_golden.pt"
HOUR = 3_600_000
WARMUP = 1000

# name -> (strategy, options, first traded candle, end (exclusive), UTC dates)
CASES: dict[str, tuple[str, dict[str, Any], str, str]] = {
    "sma-2019q1": ("sma", {}, "2019-01-01", "2019-04-01"),
    "sma-atr-2018": ("sma", {"atr_stop": 2.0, "take_profit": 4.0}, "2018-01-01", "2019-01-01"),
    "dqn-2019q1": ("dqn", {}, "2019-01-01", "2019-04-01"),
    "dqn-2018h2-2019": ("dqn", {}, "2018-07-01", "2019-10-01"),
}


def settings_for(tmp: Path) -> Any:
    sys.path.insert(0, str(ROOT))
    from config import load_settings
    return load_settings(None, environ={}, HISTORICAL_DATA_PATH=str(tmp / "data"),
                         LOG_FILE=str(tmp / "logs" / "bot.log"), SIMULATION_ORDER_DELAY=0.0)


def strategy_for(settings: Any, name: str, options: dict[str, Any]) -> Any:
    if name == "dqn":
        from bot.strategies.dqn import DQNStrategy
        return DQNStrategy(settings, model_path=CHECKPOINT)
    from bot.strategies import get_strategy
    return get_strategy(name, settings, **options)


def frame_for(start: str, end: str) -> tuple[Any, int]:
    import pandas as pd

    from bot.market.seed import load_seed
    frame = load_seed("BTCUSDT", "60")
    s_ms = int(pd.Timestamp(start, tz="UTC").value // 1_000_000)
    e_ms = int(pd.Timestamp(end, tz="UTC").value // 1_000_000)
    first = int(np.searchsorted(np.asarray(frame.index), s_ms))
    frame = frame[frame.index < e_ms].iloc[first - WARMUP:]
    return frame, WARMUP


def run_case(settings: Any, case: str) -> Any:
    from bot.research.backtest import engine_backtest
    name, options, start, end = CASES[case]
    frame, first = frame_for(start, end)
    return engine_backtest(settings, strategy_for(settings, name, options), frame, start=first)


def summary(result: Any) -> dict[str, Any]:
    """What must not change: every trade, the final equity, and the equity curve's checksum."""
    return {"trades": [[str(t.side), t.entry_ms, t.exit_ms, t.qty, t.entry_price, t.exit_price, t.pnl, t.fees,
                        t.reason] for t in result.trades],
            "final_equity": float(result.equity[-1]), "equity_sum": float(np.sum(result.equity)),
            "held_sum": int(np.sum(np.abs(result.position))), "candles": int(result.candles)}


def record(path: Path = GOLDEN) -> None:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        s = settings_for(Path(tmp))
        for case in CASES:
            res = run_case(s, case)
            out[case] = summary(res)
            print(f"{case}: {len(res.trades)} trades, final equity {res.equity[-1]:.4f}, "
                  f"{res.candles_per_second:,.0f} candles/s")
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    import logging
    logging.disable(logging.WARNING)
    record(Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN)
