"""Performance metrics shared by training evaluation, the backtester and the promotion gate.

Conventions: crypto trades every day, so a year is 365 days; returns are simple per-candle
returns of an equity curve; Sharpe and Sortino use a zero risk-free rate and are annualised by
sqrt(periods per year). Drawdowns are fractions of the running peak (0.1 = 10 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import kurtosis, norm, skew

from bot.types import interval_ms

__all__ = [
    "periods_per_year", "returns_of", "sharpe", "sortino", "max_drawdown", "calmar", "trade_stats",
    "expected_max_sharpe", "deflated_sharpe", "Performance", "performance", "DAYS_PER_YEAR",
]

DAYS_PER_YEAR = 365


def periods_per_year(interval: str) -> float:
    """Candles per 365-day year for a Bybit interval."""
    return DAYS_PER_YEAR * 86_400_000 / interval_ms(interval)


def returns_of(equity: Sequence[float] | np.ndarray) -> np.ndarray:
    """Simple returns of an equity curve (length n-1)."""
    e = np.asarray(equity, dtype=np.float64)
    if len(e) < 2:
        return np.zeros(0)
    return e[1:] / e[:-1] - 1.0


def sharpe(returns: np.ndarray, ppy: float) -> float:
    """Annualised Sharpe ratio (risk-free 0); 0 when there is no variation."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return 0.0
    sd = r.std(ddof=1)
    return float(r.mean() / sd * math.sqrt(ppy)) if sd > 1e-15 else 0.0


def sortino(returns: np.ndarray, ppy: float) -> float:
    """Annualised Sortino ratio: mean over downside deviation (target 0)."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return 0.0
    dd = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if dd <= 1e-15:
        return float("inf") if r.mean() > 0 else 0.0
    return float(r.mean() / dd * math.sqrt(ppy))


@dataclass(frozen=True)
class Drawdown:
    max_drawdown: float     # fraction of peak
    duration: int           # longest stretch below a previous peak, in candles
    peak_index: int
    trough_index: int


def max_drawdown(equity: Sequence[float] | np.ndarray) -> Drawdown:
    """Deepest fall from a running peak, and the longest time spent under water."""
    e = np.asarray(equity, dtype=np.float64)
    if len(e) == 0:
        return Drawdown(0.0, 0, 0, 0)
    peak = np.maximum.accumulate(e)
    dd = 1.0 - e / peak
    trough = int(np.argmax(dd))
    peak_i = int(np.argmax(e[: trough + 1])) if trough > 0 else 0
    under = dd > 1e-12
    longest = run = 0
    for u in under:  # one pass over a boolean array: cheap, and clearer than a cumsum trick
        run = run + 1 if u else 0
        longest = max(longest, run)
    return Drawdown(float(dd[trough]), longest, peak_i, trough)


def calmar(equity: Sequence[float] | np.ndarray, ppy: float) -> float:
    """Annualised growth rate over max drawdown."""
    e = np.asarray(equity, dtype=np.float64)
    if len(e) < 2 or e[0] <= 0:
        return 0.0
    years = (len(e) - 1) / ppy
    cagr = (e[-1] / e[0]) ** (1.0 / years) - 1.0 if years > 0 and e[-1] > 0 else -1.0
    mdd = max_drawdown(e).max_drawdown
    return float(cagr / mdd) if mdd > 1e-12 else 0.0


@dataclass(frozen=True)
class TradeStats:
    trades: int
    wins: int
    win_rate: float          # fraction
    avg_win: float
    avg_loss: float          # negative number (or 0)
    profit_factor: float     # gross profit / gross loss (inf with no losses and some profit)
    net: float


def trade_stats(pnls: Sequence[float] | np.ndarray) -> TradeStats:
    """Win rate, average win / loss and profit factor of closed-trade P&Ls (net of fees)."""
    p = np.asarray(pnls, dtype=np.float64)
    if len(p) == 0:
        return TradeStats(0, 0, 0.0, 0.0, 0.0, 0.0, 0.0)
    wins, losses = p[p > 0], p[p <= 0]
    gross_win, gross_loss = wins.sum(), -losses.sum()
    pf = float(gross_win / gross_loss) if gross_loss > 0 else (float("inf") if gross_win > 0 else 0.0)
    return TradeStats(len(p), len(wins), len(wins) / len(p), float(wins.mean()) if len(wins) else 0.0,
                      float(losses.mean()) if len(losses) else 0.0, pf, float(p.sum()))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum of `n_trials` Sharpe ratios under the null of no skill
    (Bailey & Lopez de Prado 2014), in the same (per-period) units as the variance."""
    if n_trials <= 1:
        return 0.0
    gamma = 0.5772156649015329
    return math.sqrt(max(sharpe_variance, 0.0)) * (
        (1 - gamma) * norm.ppf(1 - 1.0 / n_trials) + gamma * norm.ppf(1 - 1.0 / (n_trials * math.e)))


def deflated_sharpe(returns: np.ndarray, n_trials: int, sharpe_variance: float | None = None) -> float:
    """Probability that the per-period Sharpe of `returns` beats the best of `n_trials` unskilled
    tries (the deflated Sharpe ratio, 0..1). Without a measured variance of the trials' Sharpe
    ratios, the variance of a Sharpe estimate under the null (1 / (T - 1)) is used."""
    r = np.asarray(returns, dtype=np.float64)
    t = len(r)
    if t < 3:
        return 0.0
    sd = r.std(ddof=1)
    if sd <= 1e-15:
        return 0.0
    sr = r.mean() / sd
    var = sharpe_variance if sharpe_variance is not None else 1.0 / (t - 1)
    sr0 = expected_max_sharpe(max(n_trials, 1), var)
    g3 = float(skew(r))
    g4 = float(kurtosis(r, fisher=False))
    denom = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    if denom <= 0:
        return 0.0
    return float(norm.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(denom)))


@dataclass(frozen=True)
class Performance:
    """The headline numbers of one equity curve and its trades."""

    start_equity: float
    end_equity: float
    net_pnl: float
    return_pct: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown_pct: float
    max_drawdown_candles: int
    trades: int
    win_rate_pct: float
    avg_win: float
    avg_loss: float
    profit_factor: float
    fees: float
    exposure_pct: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def performance(equity: Sequence[float] | np.ndarray, trade_pnls: Sequence[float] | np.ndarray, *,
                interval: str, fees: float = 0.0, exposure: Sequence[bool] | np.ndarray | None = None
                ) -> Performance:
    """Everything a report needs from an equity curve (one point per candle) and trade P&Ls."""
    e = np.asarray(equity, dtype=np.float64)
    ppy = periods_per_year(interval)
    r = returns_of(e)
    dd = max_drawdown(e)
    ts = trade_stats(trade_pnls)
    start, end = (float(e[0]), float(e[-1])) if len(e) else (0.0, 0.0)
    exp = float(np.mean(np.asarray(exposure, dtype=bool)) * 100) if exposure is not None and len(exposure) else 0.0
    return Performance(
        start_equity=start, end_equity=end, net_pnl=end - start,
        return_pct=(end / start - 1) * 100 if start else 0.0,
        sharpe=sharpe(r, ppy), sortino=sortino(r, ppy), calmar=calmar(e, ppy),
        max_drawdown_pct=dd.max_drawdown * 100, max_drawdown_candles=dd.duration,
        trades=ts.trades, win_rate_pct=ts.win_rate * 100, avg_win=ts.avg_win, avg_loss=ts.avg_loss,
        profit_factor=ts.profit_factor, fees=float(fees), exposure_pct=exp)
