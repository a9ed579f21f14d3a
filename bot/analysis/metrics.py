"""Performance metrics shared by training evaluation, the backtester, the optimiser and the
promotion gate: each is defined here once.

Definitions:
- **returns** are log returns of the equity curve, ln(e[t] / e[t-1]): they add up over time, so a
  curve that ends where it started has a mean return of exactly 0 and a loss is never turned into
  a positive Sharpe by volatility drag (simple returns would: +10 % then -10 % averages +0 %
  while the money is down 1 %).
- **Sharpe** = mean / standard deviation (ddof 1) of the log returns x sqrt(periods per year),
  risk-free rate 0. **Sortino** = mean / downside deviation (root mean square of the negative
  log returns, target 0) x sqrt(periods per year).
- **periods per year** come from the data's calendar: a market that trades every day (crypto)
  has 365 days a year, so 8,760 hourly candles; a market with an exchange calendar (no candles on
  weekends: stocks) has 252 trading days, times its candles per trading day. Without candle
  times, the Bybit interval says it (365-day calendar).
- **drawdowns** are fractions of the running peak (0.1 = 10 %); **return** is end / start - 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from bot.types import interval_ms

__all__ = [
    "periods_per_year", "log_returns", "total_return_pct", "sharpe", "sortino", "max_drawdown", "calmar",
    "trade_stats", "expected_max_sharpe", "deflated_sharpe", "Performance", "performance", "DAYS_PER_YEAR",
    "TRADING_DAYS_PER_YEAR", "has_exchange_calendar",
]

DAYS_PER_YEAR = 365           # a market open every day (crypto)
TRADING_DAYS_PER_YEAR = 252   # a market with an exchange calendar (stocks: weekdays less holidays)
_DAY_MS = 86_400_000
_YEAR_MS = DAYS_PER_YEAR * _DAY_MS


def has_exchange_calendar(times_ms: Sequence[int] | np.ndarray) -> bool:
    """True when candles over at least three weeks never fall on a Saturday or Sunday (UTC):
    the data follow an exchange's trading days, not a market open every day."""
    t = np.asarray(times_ms, dtype=np.int64)
    if len(t) < 10 or t[-1] - t[0] < 21 * _DAY_MS:
        return False
    weekday = (t // _DAY_MS + 3) % 7          # 1970-01-01 was a Thursday: 0 = Monday
    return not bool(np.any(weekday >= 5))


def periods_per_year(interval: str | None = None, times_ms: Sequence[int] | np.ndarray | None = None) -> float:
    """Return periods per year of a curve with one point per candle (see the module docstring).

    `interval`: the Bybit interval of the candles; `times_ms`: their open times, to read the
    calendar from the data. With times and no interval (a curve sampled irregularly, like the
    paper record of a 24/7 market), the samples' own density over their span."""
    t = None if times_ms is None else np.asarray(times_ms, dtype=np.int64)
    if interval is None:
        if t is None or len(t) < 2 or t[-1] <= t[0]:
            raise ValueError("periods_per_year needs an interval or at least two distinct times")
        return (len(t) - 1) * _YEAR_MS / float(t[-1] - t[0])
    per_day = _DAY_MS / interval_ms(interval)
    if t is not None and has_exchange_calendar(t):
        per_day = min(max(per_day, 1.0), len(t) / len(np.unique(t // _DAY_MS)))   # a session is < 24 h
        return TRADING_DAYS_PER_YEAR * per_day
    return DAYS_PER_YEAR * per_day


def log_returns(equity: Sequence[float] | np.ndarray) -> np.ndarray:
    """Log returns of an equity curve, ln(e[t] / e[t-1]) (length n-1). A curve that touches 0 or
    below has lost everything: the return into it is -inf, which the ratios below report as such."""
    e = np.asarray(equity, dtype=np.float64)
    if len(e) < 2:
        return np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(e[1:] / e[:-1])
    return np.where(np.isnan(r), -np.inf, r)


def total_return_pct(returns: np.ndarray) -> float:
    """The growth, in %, of a chain of log returns: (exp(sum) - 1) x 100."""
    return float(np.expm1(np.sum(np.asarray(returns, dtype=np.float64))) * 100.0)


def sharpe(returns: np.ndarray, ppy: float) -> float:
    """Annualised Sharpe ratio of log returns (risk-free 0); 0 when there is no variation."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return 0.0
    if not np.all(np.isfinite(r)):
        return float("-inf")       # the account was wiped out
    sd = r.std(ddof=1)
    return float(r.mean() / sd * math.sqrt(ppy)) if sd > 1e-15 else 0.0


def sortino(returns: np.ndarray, ppy: float) -> float:
    """Annualised Sortino ratio of log returns: mean over downside deviation (target 0)."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return 0.0
    if not np.all(np.isfinite(r)):
        return float("-inf")
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
    from scipy.stats import norm  # here, not at the top: scipy.stats costs ~0.4 s to import

    gamma = 0.5772156649015329
    return math.sqrt(max(sharpe_variance, 0.0)) * (
        (1 - gamma) * norm.ppf(1 - 1.0 / n_trials) + gamma * norm.ppf(1 - 1.0 / (n_trials * math.e)))


def deflated_sharpe(returns: np.ndarray, n_trials: int, sharpe_variance: float | None = None) -> float:
    """Probability that the per-period Sharpe of `returns` beats the best of `n_trials` unskilled
    tries (the deflated Sharpe ratio, 0..1). Without a measured variance of the trials' Sharpe
    ratios, the variance of a Sharpe estimate under the null (1 / (T - 1)) is used."""
    r = np.asarray(returns, dtype=np.float64)
    t = len(r)
    if t < 3 or not np.all(np.isfinite(r)):
        return 0.0
    sd = r.std(ddof=1)
    if sd <= 1e-15:
        return 0.0
    sr = r.mean() / sd
    var = sharpe_variance if sharpe_variance is not None else 1.0 / (t - 1)
    sr0 = expected_max_sharpe(max(n_trials, 1), var)
    from scipy.stats import kurtosis, norm, skew

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
                interval: str, fees: float = 0.0, exposure: Sequence[bool] | np.ndarray | None = None,
                times_ms: Sequence[int] | np.ndarray | None = None) -> Performance:
    """Everything a report needs from an equity curve (one point per candle) and trade P&Ls.
    `times_ms`: the candles' open times, so the calendar of the data sets the periods per year."""
    e = np.asarray(equity, dtype=np.float64)
    ppy = periods_per_year(interval, times_ms)
    r = log_returns(e)
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
