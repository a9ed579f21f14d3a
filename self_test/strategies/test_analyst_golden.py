"""The analyst decides and trades exactly as the windowed version did, on the real seed candles.

`self_test/fixtures/analyst_golden.json.gz` holds, per scenario, every decision the analyst took
on the engine path (`engine_backtest`) and the trades that came out, recorded with the analyst
that recomputed `compute_all`, a pandas resample and support/resistance over fresh windows on
every evaluation (commit before the incremental analyst). The incremental analyst must give the
same targets, setups, confidences and reasons, stops and targets to 1e-9 relative, and the same
trades. Regenerate (only when the analyst's *rules* change on purpose):

    .venv/bin/python -m self_test.strategies.test_analyst_golden --record
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bot.market.seed import load_seed
from bot.market.timeframes import resample
from bot.research.backtest import engine_backtest
from bot.strategies.analyst import AnalystStrategy
from bot.strategies.base import Decision, StrategyContext
from self_test.conftest import FIXTURES, make_settings

GOLDEN = FIXTURES / "analyst_golden.json.gz"


def _ms(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").timestamp() * 1000)


# name -> (base interval, first candle, last candle, warm-up candles, analyst options)
SCENARIOS: dict[str, tuple[str, str, str, int, dict[str, Any]]] = {
    # the default analyst on hourly candles, history from the seed cache (daily EMA 200 settled)
    "btc_1h_2019q1_cache": ("60", "2018-12-01", "2019-04-01", 700, {}),
    # no cache: everything warms up on what the engine hands over; the whole hourly seed, so the
    # entry window fills and slides and the kept candles are trimmed (after 660 days)
    "btc_1h_all_nohistory": ("60", "2017-07-01", "2019-10-18", 400, {"history": None}),
    # 4 h base candles: the entry timeframe is the base one
    "btc_4h_all_nohistory": ("240", "2017-07-01", "2019-10-18", 100, {"history": None}),
    # other timeframes: 2 h setups confirmed by 12 h candles (no such cache: warms up in the run)
    "btc_1h_2h_12h_2018": ("60", "2018-03-01", "2018-12-31", 400,
                           {"entry_interval": "120", "confirm_interval": "720"}),
}


class _Recorder(AnalystStrategy):
    """The analyst, writing down every decision it returns."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[dict[str, Any]] = []

    def decide(self, context: StrategyContext) -> Decision:
        d = super().decide(context)
        self.log.append({"t": context.time_ms, "held": context.position_target, "target": d.target,
                         "confidence": d.confidence, "setup": d.setup, "reason": d.reason,
                         "stop": d.stop_loss, "tp": d.take_profit,
                         "zone": list(d.entry_zone) if d.entry_zone else None})
        return d


def run_scenario(name: str, data_dir: Path) -> dict[str, Any]:
    interval, first, last, warmup, options = SCENARIOS[name]
    frame = load_seed("BTCUSDT", "60")
    if interval != "60":
        frame = resample(frame, "60", interval)
    frame = frame[(frame.index >= _ms(first)) & (frame.index < _ms(last))]
    settings = make_settings(data_dir)
    strat = _Recorder(settings, **options)
    logging.disable(logging.WARNING)
    try:
        res = engine_backtest(settings, strat, frame, interval=interval, start=warmup)
    finally:
        logging.disable(logging.NOTSET)
    trades = [{"side": t.side, "entry_ms": t.entry_ms, "exit_ms": t.exit_ms, "qty": t.qty,
               "entry": t.entry_price, "exit": t.exit_price, "reason": t.reason} for t in res.trades]
    return {"decisions": strat.log, "trades": trades, "equity_end": float(res.equity[-1])}


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _golden() -> dict[str, Any]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as f:
        return dict(json.load(f))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_decisions_and_trades_match_the_recorded_analyst(name: str, tmp_path: Path) -> None:
    want = _golden()[name]
    got = run_scenario(name, tmp_path)
    assert len(want["decisions"]) > 1000 and len(want["trades"]) >= 3   # the fixture means something
    assert len(got["decisions"]) == len(want["decisions"])
    for g, w in zip(got["decisions"], want["decisions"], strict=True):
        for key in w:
            assert _close(g[key], w[key]), (name, key, pd.Timestamp(w["t"], unit="ms"), g, w)
    assert len(got["trades"]) == len(want["trades"])
    for g, w in zip(got["trades"], want["trades"], strict=True):
        for key in w:
            assert _close(g[key], w[key]), (name, key, g, w)
    assert math.isclose(got["equity_end"], want["equity_end"], rel_tol=1e-9)


def record() -> None:
    out: dict[str, Any] = {}
    for name in SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp:
            out[name] = run_scenario(name, Path(tmp))
        print(f"{name}: {len(out[name]['decisions'])} decisions, {len(out[name]['trades'])} trades, "
              f"equity {out[name]['equity_end']:.2f}")
    with gzip.open(GOLDEN, "wt", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    if "--record" in sys.argv:
        record()
    else:
        print(__doc__)
