"""What a person reads after a backtest: the numbers, a table, a picture and the files.

Metrics come from `bot.analysis.metrics.performance` (365-day year, zero risk-free rate), next to
buy-and-hold over the same candles with the same costs. The per-regime breakdown splits the
candles by the market regime of `bot.analysis.features` (trending / choppy / volatile) and says how the
strategy did in each. Files: `trades.csv` (one row per round trip), `metrics.json`, and
`report.png` (equity vs buy-and-hold, drawdown, price with entry/exit markers). Every file is
written to a temporary name and renamed, so a crash never leaves half a report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bot.analysis.features import REGIMES, regime
from bot.analysis.metrics import max_drawdown, performance
from bot.atomic import atomic_write_bytes, atomic_write_png
from bot.research.fast_path import BacktestResult, CostModel, buy_and_hold
from bot.types import interval_ms, ms_to_iso

__all__ = ["BacktestReport", "build_report", "regime_labels"]

def regime_labels(frame: pd.DataFrame, settings: Any) -> np.ndarray:
    """The regime of every candle from `bot.analysis.features` ('warmup' before it is defined)."""
    return np.asarray(regime(frame, settings=settings), dtype=object)


@dataclass(frozen=True)
class BacktestReport:
    """The headline metrics, the per-regime rows, and the result they came from."""

    result: BacktestResult
    metrics: dict[str, Any]
    regimes: tuple[dict[str, Any], ...]
    buy_hold_equity: np.ndarray

    # -- console -----------------------------------------------------------------------------
    def table(self) -> str:
        m = self.metrics
        pf = m["profit_factor"]
        rows = [
            ("period", f"{m['start']} .. {m['end']} ({m['candles']} candles of {m['interval']})"),
            ("strategy", f"{m['strategy']} {m['params'] or ''} ({m['path']} path)"),
            ("net P&L after fees", f"{m['net_pnl_usdt']:+,.2f} USDT ({m['return_pct']:+.2f} %)"),
            ("buy-and-hold", f"{m['buy_hold_pnl_usdt']:+,.2f} USDT ({m['buy_hold_return_pct']:+.2f} %)"),
            ("Sharpe / Sortino (ann.)", f"{m['sharpe']:.2f} / {m['sortino']:.2f}"),
            ("buy-and-hold Sharpe", f"{m['buy_hold_sharpe']:.2f}"),
            ("Calmar", f"{m['calmar']:.2f}"),
            ("max drawdown", f"{m['max_drawdown_pct']:.2f} % lasting {m['max_drawdown_days']:.1f} days "
                             f"(buy-and-hold {m['buy_hold_max_drawdown_pct']:.2f} %)"),
            ("trades / win rate", f"{m['trades']} / {m['win_rate_pct']:.1f} %"),
            ("avg win / avg loss", f"{m['avg_win']:+.2f} / {m['avg_loss']:+.2f} USDT"),
            ("profit factor", "inf" if pf == float("inf") else f"{pf:.2f}"),
            ("exposure time", f"{m['exposure_pct']:.1f} % of candles"),
            ("fees paid", f"{m['fees']:,.2f} USDT"),
            ("speed", f"{m['candles_per_second']:,.0f} candles/s"),
        ]
        w = max(len(k) for k, _ in rows)
        out = [f"{k:<{w}}  {v}" for k, v in rows]
        if self.regimes:
            out.append("")
            out.append(f"{'regime':<10}{'candles':>9}{'share %':>9}{'return %':>10}{'trades':>8}"
                       f"{'win %':>7}{'net USDT':>11}")
            for r in self.regimes:
                out.append(f"{r['regime']:<10}{r['candles']:>9}{r['share_pct']:>9.1f}{r['return_pct']:>10.2f}"
                           f"{r['trades']:>8}{r['win_rate_pct']:>7.1f}{r['net_pnl_usdt']:>11.2f}")
        else:
            out.append("per-regime breakdown: not available (no regime labels were given)")
        return "\n".join(out)

    # -- files -------------------------------------------------------------------------------
    def write(self, out_dir: str | Path, *, plot: bool = True) -> dict[str, Path]:
        """trades.csv, metrics.json and (with `plot`) report.png into `out_dir`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"trades": out / "trades.csv", "metrics": out / "metrics.json"}
        atomic_write_bytes(paths["trades"], self.result.trade_frame().to_csv(index=False).encode())
        # JSON has no infinity: a profit factor without losses is written as null
        payload = {k: _finite(v) if isinstance(v, float) else v for k, v in self.metrics.items()}
        payload["regimes"] = list(self.regimes)
        atomic_write_bytes(paths["metrics"], json.dumps(payload, indent=2, default=_json_default).encode())
        if plot:
            paths["plot"] = out / "report.png"
            self.plot(paths["plot"])
        return paths

    def plot(self, path: str | Path) -> Path:
        """Equity (vs buy-and-hold), drawdown, and price with trade markers, as one PNG."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        res = self.result
        t = pd.to_datetime(res.open_ms + interval_ms(res.interval), unit="ms")
        fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(12, 9), sharex=True,
                                            gridspec_kw={"height_ratios": [3, 1.2, 3]})
        ax1.plot(t, res.equity, lw=1.0, label=f"{res.strategy} (after fees)")
        ax1.plot(t, self.buy_hold_equity, lw=0.8, alpha=0.7, label="buy-and-hold")
        ax1.set_ylabel("equity, USDT")
        ax1.legend(loc="upper left")
        m = self.metrics
        ax1.set_title(f"{res.symbol} {res.interval}: {m['return_pct']:+.1f} % vs buy-and-hold "
                      f"{m['buy_hold_return_pct']:+.1f} %, Sharpe {m['sharpe']:.2f}, "
                      f"max DD {m['max_drawdown_pct']:.1f} %, {m['trades']} trades")
        peak = np.maximum.accumulate(res.equity)
        ax2.fill_between(t, -(1 - res.equity / peak) * 100, 0, color="tab:red", alpha=0.4)
        ax2.set_ylabel("drawdown, %")
        ax3.plot(t, res.close, lw=0.7, color="0.3", label="close")
        tr = res.trades
        if tr:
            for side, mk, col in (("long", "^", "tab:green"), ("short", "v", "tab:red")):
                sel = [x for x in tr if x.side == side]
                ax3.scatter(pd.to_datetime([x.entry_ms for x in sel], unit="ms"), [x.entry_price for x in sel],
                            marker=mk, s=18, color=col, label=f"{side} entry", zorder=3)
            ax3.scatter(pd.to_datetime([x.exit_ms for x in tr], unit="ms"), [x.exit_price for x in tr],
                        marker="x", s=14, color="black", label="exit", zorder=3)
        ax3.set_ylabel("price")
        ax3.legend(loc="upper left")
        fig.tight_layout()
        path = Path(path)
        atomic_write_png(fig, path, dpi=90)
        return path


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def build_report(result: BacktestResult, costs: CostModel, *, regimes: np.ndarray | None = None) -> BacktestReport:
    """Metrics, buy-and-hold and the per-regime breakdown of one backtest.

    `regimes`: one label per candle of the result (e.g. `regime_labels(frame, settings)[start:]`).
    """
    eq = result.equity
    perf = performance(eq, [t.pnl for t in result.trades], interval=result.interval, fees=result.fees,
                       exposure=result.position != 0, times_ms=result.open_ms)
    bh = buy_and_hold(result.close, costs)
    bh_perf = performance(bh, [], interval=result.interval, times_ms=result.open_ms)
    dd = max_drawdown(eq)
    days_per_candle = interval_ms(result.interval) / 86_400_000
    metrics: dict[str, Any] = {
        "symbol": result.symbol, "interval": result.interval, "strategy": result.strategy,
        "params": result.params, "path": result.path,
        "start": ms_to_iso(int(result.open_ms[0])), "end": ms_to_iso(int(result.open_ms[-1]) +
                                                                      interval_ms(result.interval)),
        "candles": result.candles, "start_balance": result.start_balance,
        "end_equity": perf.end_equity, "net_pnl_usdt": perf.net_pnl, "return_pct": perf.return_pct,
        "buy_hold_pnl_usdt": float(bh[-1] - bh[0]), "buy_hold_return_pct": bh_perf.return_pct,
        "buy_hold_sharpe": bh_perf.sharpe, "buy_hold_max_drawdown_pct": bh_perf.max_drawdown_pct,
        "sharpe": perf.sharpe, "sortino": perf.sortino,
        "calmar": perf.calmar, "max_drawdown_pct": perf.max_drawdown_pct,
        "max_drawdown_candles": perf.max_drawdown_candles,
        "max_drawdown_days": perf.max_drawdown_candles * days_per_candle,
        "max_drawdown_peak": ms_to_iso(int(result.open_ms[dd.peak_index])),
        "max_drawdown_trough": ms_to_iso(int(result.open_ms[dd.trough_index])),
        "trades": perf.trades, "win_rate_pct": perf.win_rate_pct, "avg_win": perf.avg_win,
        "avg_loss": perf.avg_loss, "profit_factor": perf.profit_factor, "exposure_pct": perf.exposure_pct,
        "fees": perf.fees, "elapsed_s": result.elapsed_s, "candles_per_second": result.candles_per_second,
    }
    rows: list[dict[str, Any]] = []
    if regimes is not None and len(regimes) == len(eq):
        # candle i's return belongs to the regime known when candle i-1 closed (no look-ahead)
        step_ret = np.concatenate(([0.0], eq[1:] / eq[:-1] - 1.0))
        prev = np.concatenate(([regimes[0]], regimes[:-1]))
        entry_idx = np.searchsorted(result.open_ms + interval_ms(result.interval),
                                    [t.entry_ms for t in result.trades])
        entry_idx = np.clip(entry_idx, 0, len(eq) - 1)
        for name in (*REGIMES, "warmup"):   # warmup: before the regime indicators exist
            sel = prev == name
            tr = [t for t, k in zip(result.trades, entry_idx, strict=True) if regimes[k] == name]
            if name == "warmup" and not sel.any() and not tr:
                continue
            wins = sum(1 for t in tr if t.pnl > 0)
            rows.append({"regime": name, "candles": int(sel.sum()), "share_pct": float(sel.mean() * 100),
                         "return_pct": float((np.prod(1 + step_ret[sel]) - 1) * 100),
                         "trades": len(tr), "win_rate_pct": 100.0 * wins / len(tr) if tr else 0.0,
                         "net_pnl_usdt": float(sum(t.pnl for t in tr))})
    return BacktestReport(result, metrics, tuple(rows), bh)
