"""The four chart figures. Each is built once and updated in place (set_data, set_verts), never
cleared and re-plotted, so a redraw costs one Agg render. Used only from the chart thread.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from bot.ui.chart_view import ChartView, Crosshair
from bot.ui.history import HistoryCopy

__all__ = ["PriceFigure", "EquityFigure", "PnlFigure", "TrainingFigure", "ms_to_num"]

UP, DOWN = "#26a69a", "#ef5350"
DAY_MS = 86_400_000.0


def ms_to_num(ms: Any) -> np.ndarray:
    """UTC milliseconds -> matplotlib date numbers (days since 1970-01-01)."""
    return np.asarray(ms, dtype=float) / DAY_MS


def _new_figure() -> Figure:
    fig = Figure(figsize=(8, 5), dpi=100, facecolor="white")
    return fig


def _date_axis(ax: Any) -> None:
    loc = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _style(ax: Any) -> None:
    ax.grid(True, color="#e6e8eb", linewidth=0.8)
    ax.tick_params(labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


class _Base:
    def __init__(self) -> None:
        self.figure = _new_figure()
        self.empty = None
        self.view = ChartView()          # zoom, pan and pointer from the Tk thread
        self.crosshair: Crosshair | None = None
        self._full: tuple[float, float] | None = None   # the whole time range, as `update` set it
        self._times = np.asarray([], dtype=float)

    def interact(self) -> None:
        """Chart thread, after `update`: the user's zoom and pan, then the crosshair (charts without
        a time axis ignore both)."""
        events, pointer = self.view.take()
        ax = getattr(self, "ax", None)
        if ax is None or self.crosshair is None:
            return
        if self._full is None:
            self.crosshair.hide()
            return
        if self.view.xlim is not None:
            ax.set_xlim(self.view.xlim)
        self.view.apply(ax, events, self._full)
        if self.view.xlim is not None:
            ax.set_xlim(self.view.xlim)
            self._fit_y(*self.view.xlim)
        else:
            ax.set_xlim(self._full)
            self._fit_y(*self._full)
        self.crosshair.show(pointer, self._times, self._describe)

    def _fit_y(self, x0: float, x1: float) -> None:
        """Prices (or money) of what is in view fill the height."""

    def _describe(self, i: int, y: float) -> str:
        return ""

    def _empty_text(self, ax: Any, text: str) -> None:
        self.empty = ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
                             fontsize=12, color="#8a8f98")

    def _show_empty(self, on: bool) -> None:
        """The 'nothing yet' text instead of the axes' (meaningless) ticks, or the other way round."""
        if self.empty is not None:
            self.empty.set_visible(on)
        for ax in self.figure.axes:
            ax.xaxis.set_visible(not on)
            ax.yaxis.set_visible(not on)


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    return default


def _levels_of(value: Any) -> list[float]:
    """A price level or a list of them (None and 0 mean none)."""
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
    return [float(v) for v in values if v and math.isfinite(float(v))]


class PriceFigure(_Base):
    """Candlesticks of one pair with EMA 21/50, Bollinger bands, trade markers, stop and TP lines."""

    def __init__(self) -> None:
        super().__init__()
        ax = self.ax = self.figure.add_subplot(111)
        self.figure.subplots_adjust(left=0.085, right=0.985, top=0.93, bottom=0.08)
        _style(ax)
        _date_axis(ax)
        self.wicks = LineCollection([], linewidths=0.8, zorder=2)
        self.bodies = PolyCollection([], linewidths=0.4, zorder=3)
        ax.add_collection(self.wicks)
        ax.add_collection(self.bodies)
        (self.ema21,) = ax.plot([], [], color="#1f77b4", lw=1.2, label="EMA21", zorder=4)
        (self.ema50,) = ax.plot([], [], color="#ff7f0e", lw=1.2, label="EMA50", zorder=4)
        (self.bb_up,) = ax.plot([], [], color="#9467bd", lw=0.8, ls="--", label="BB 20/2", zorder=4)
        (self.bb_lo,) = ax.plot([], [], color="#9467bd", lw=0.8, ls="--", zorder=4)
        self.entries_long = ax.scatter([], [], marker="^", s=70, color="#0a7d32", edgecolor="black",
                                       linewidths=0.5, zorder=6, label="buy")
        self.entries_short = ax.scatter([], [], marker="v", s=70, color="#b00020", edgecolor="black",
                                        linewidths=0.5, zorder=6, label="sell")
        self.exits = ax.scatter([], [], marker="X", s=60, color="#333333", zorder=6, label="exit")
        self.stops = LineCollection([], colors="#d62728", linestyles="--", linewidths=1.1, zorder=5,
                                    label="stop")
        self.tps = LineCollection([], colors="#2ca02c", linestyles="--", linewidths=1.1, zorder=5,
                                  label="TP")
        ax.add_collection(self.stops)
        ax.add_collection(self.tps)
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7.5, ncol=8, frameon=False,
                  handlelength=1.3, handletextpad=0.4, columnspacing=0.8, borderaxespad=0.1)
        self.title = ax.set_title("", fontsize=10, loc="left", pad=8)
        self._empty_text(ax, "No candles yet - press Start Bot")
        self.crosshair = Crosshair(ax)
        self._arrays: dict[str, np.ndarray] = {}

    def update(self, symbol: str, data: Any) -> bool:
        """Show `data` (the engine's ChartData, or None); returns False when there is nothing to show."""
        frame = _get(data, "candles", "frame") if data is not None else None
        if frame is None or len(frame) == 0:
            self._show_empty(True)
            self.title.set_text(f"{symbol}: no data" if data is not None else symbol)
            self._full = None
            return False
        self._show_empty(False)
        t = ms_to_num(np.asarray(frame.index, dtype=np.int64))
        o, h, lo, c = (frame[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
        width = float(np.median(np.diff(t))) * 0.7 if len(t) > 1 else 1 / 24 * 0.7
        up = c >= o
        colours = np.where(up, UP, DOWN)
        self.wicks.set_segments(np.stack([np.column_stack([t, lo]), np.column_stack([t, h])], axis=1))
        self.wicks.set_color(colours)
        bottom, top = np.minimum(o, c), np.maximum(o, c)
        top = np.where(top - bottom == 0, bottom + (h - lo) * 0.01 + 1e-9, top)
        x0, x1 = t - width / 2, t + width / 2
        self.bodies.set_verts(np.stack([np.column_stack([x0, bottom]), np.column_stack([x0, top]),
                                        np.column_stack([x1, top]), np.column_stack([x1, bottom])], axis=1))
        self.bodies.set_facecolor(colours)
        self.bodies.set_edgecolor(colours)
        lo_y, hi_y = float(np.nanmin(lo)), float(np.nanmax(h))
        span = hi_y - lo_y or hi_y * 0.01 or 1.0
        for line, names in ((self.ema21, ("ema21", "ema_21")), (self.ema50, ("ema50", "ema_50")),
                            (self.bb_up, ("bb_upper", "bb_up")), (self.bb_lo, ("bb_lower", "bb_low"))):
            y = _get(data, *names)
            if y is not None and len(y) == len(t):
                y = np.array(y, dtype=float)
                # warm-up values (NaN, or anything far off the candles) are left out, not drawn as spikes
                y[~np.isfinite(y) | (y < lo_y - span) | (y > hi_y + span)] = np.nan
                line.set_data(t, y)
            else:
                line.set_data([], [])
        self._markers(data, t[0])
        for line in (self.bb_up, self.bb_lo):  # the bands stay in view too
            y = np.asarray(line.get_ydata(), dtype=float)
            y = y[np.isfinite(y)]
            if len(y):
                lo_y, hi_y = min(lo_y, float(y.min())), max(hi_y, float(y.max()))
        levels = self._levels(data, t)
        for y in levels:  # stops and targets near the price stay in view; far ones do not squash the chart
            if lo_y - span <= y <= hi_y + span:
                lo_y, hi_y = min(lo_y, y), max(hi_y, y)
        pad = (hi_y - lo_y) * 0.05 or 1.0
        self._full = (float(t[0] - width), float(t[-1] + width * 3))
        self.ax.set_xlim(*self._full)
        self.ax.set_ylim(lo_y - pad, hi_y + pad)
        self._times = t
        self._arrays = {"o": o, "h": h, "l": lo, "c": c, "ema21": _line_y(self.ema21, len(t)),
                        "ema50": _line_y(self.ema50, len(t)), "bb_up": _line_y(self.bb_up, len(t)),
                        "bb_lo": _line_y(self.bb_lo, len(t))}
        interval = str(_get(data, "interval", default=""))
        self.title.set_text(f"{symbol} {c[-1]:,.2f}   {_interval_words(interval)}")
        return True

    def _fit_y(self, x0: float, x1: float) -> None:
        a, t = self._arrays, self._times
        seen = (t >= x0) & (t <= x1)
        if not seen.any():
            return
        lo_y, hi_y = float(np.nanmin(a["l"][seen])), float(np.nanmax(a["h"][seen]))
        pad = (hi_y - lo_y) * 0.06 or max(hi_y * 0.01, 1.0)
        self.ax.set_ylim(lo_y - pad, hi_y + pad)

    def _describe(self, i: int, y: float) -> str:
        a = self._arrays

        def num(key: str) -> str:
            v = a[key][i]
            return f"{v:,.2f}" if np.isfinite(v) else "-"

        when = mdates.num2date(self._times[i]).strftime("%Y-%m-%d %H:%M UTC")
        return (f"{when}  O {num('o')}  H {num('h')}  L {num('l')}  C {num('c')}\n"
                f"EMA21 {num('ema21')}  EMA50 {num('ema50')}  BB {num('bb_lo')} .. {num('bb_up')}   "
                f"pointer {y:,.2f}")

    def _markers(self, data: Any, t0: float) -> None:
        longs, shorts, exits = [], [], []
        for m in _get(data, "markers", "trades", default=()) or ():
            t = _get(m, "time_ms", "ms", "t")
            price = _get(m, "price")
            if t is None or price is None:
                continue
            x = float(t) / DAY_MS
            if x < t0:
                continue
            kind = str(_get(m, "kind", "action", "reason", default="entry")).lower()
            side = str(_get(m, "side", default="Buy")).lower()
            if any(word in kind for word in ("exit", "close", "stop", "take", "flat", "reduce")):
                exits.append((x, price))
            elif side in ("buy", "long"):
                longs.append((x, price))
            else:
                shorts.append((x, price))
        for coll, pts in ((self.entries_long, longs), (self.entries_short, shorts), (self.exits, exits)):
            coll.set_offsets(np.asarray(pts, dtype=float).reshape(-1, 2))

    def _levels(self, data: Any, t: np.ndarray) -> list[float]:
        """Draw stop / take-profit lines over the last part of the chart; returns their prices."""
        x0, x1 = t[max(0, len(t) - 60)], t[-1]
        stops = _levels_of(_get(data, "stop_loss", "stop_lines", "stops"))
        tps = _levels_of(_get(data, "take_profit", "tp_lines", "take_profits"))
        self.stops.set_segments([[(x0, y), (x1, y)] for y in stops])
        self.tps.set_segments([[(x0, y), (x1, y)] for y in tps])
        return stops + tps


def _line_y(line: Any, n: int) -> np.ndarray:
    y = np.asarray(line.get_ydata(), dtype=float)
    return y if len(y) == n else np.full(n, np.nan)


def _interval_words(interval: str) -> str:
    if interval in ("D", "W"):
        return {"D": "daily candles", "W": "weekly candles"}[interval]
    if interval.isdigit():
        m = int(interval)
        return f"{m // 60} h candles" if m % 60 == 0 else f"{m} min candles"
    return ""


class EquityFigure(_Base):
    """Equity and balance over time, next to buy-and-hold of the traded pairs."""

    def __init__(self) -> None:
        super().__init__()
        ax = self.ax = self.figure.add_subplot(111)
        self.figure.subplots_adjust(left=0.09, right=0.98, top=0.93, bottom=0.08)
        _style(ax)
        _date_axis(ax)
        (self.equity,) = ax.plot([], [], color="#1f77b4", lw=1.6, label="equity")
        (self.balance,) = ax.plot([], [], color="#7f7f7f", lw=1.0, label="balance")
        (self.bh,) = ax.plot([], [], color="#ff7f0e", lw=1.2, ls="--", label="buy & hold")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        self.title = ax.set_title("Equity (USDT)", fontsize=10, loc="left")
        self._empty_text(ax, "No equity record yet")
        self.crosshair = Crosshair(ax)
        self._values: tuple[np.ndarray, ...] = ()

    def update(self, h: HistoryCopy) -> bool:
        if not h.time_ms:
            self._show_empty(True)
            self._full = None
            return False
        self._show_empty(False)
        t = ms_to_num(h.time_ms)
        for line, y in ((self.equity, h.equity), (self.balance, h.balance), (self.bh, h.buy_hold)):
            line.set_data(t, np.asarray(y, dtype=float))
        ys = np.concatenate([h.equity, h.balance, h.buy_hold])
        lo, hi = float(np.nanmin(ys)), float(np.nanmax(ys))
        pad = (hi - lo) * 0.08 or max(abs(hi) * 0.01, 1.0)
        span = (t[-1] - t[0]) or 1 / 24
        self._full = (float(t[0] - span * 0.01), float(t[-1] + span * 0.02))
        self.ax.set_xlim(*self._full)
        self.ax.set_ylim(lo - pad, hi + pad)
        self._times = t
        self._values = tuple(np.asarray(y, dtype=float) for y in (h.equity, h.balance, h.buy_hold))
        eq0 = h.equity[0] or 1.0
        bh = np.asarray(h.buy_hold, dtype=float)
        started = np.flatnonzero(np.isfinite(bh))   # buy-and-hold runs from this session's start
        versus = ""
        if len(started):
            first = started[0]
            versus = (f"   this session {100 * (h.equity[-1] / (h.equity[first] or 1.0) - 1):+.2f} %, "
                      f"buy & hold {100 * (bh[-1] / (bh[first] or 1.0) - 1):+.2f} %")
        self.title.set_text(f"Equity {h.equity[-1]:,.2f} USDT ({100 * (h.equity[-1] / eq0 - 1):+.2f} %){versus}")
        return True


    def _fit_y(self, x0: float, x1: float) -> None:
        seen = (self._times >= x0) & (self._times <= x1)
        if not seen.any():
            return
        ys = np.concatenate([v[seen] for v in self._values])
        lo, hi = float(np.nanmin(ys)), float(np.nanmax(ys))
        pad = (hi - lo) * 0.08 or max(abs(hi) * 0.01, 1.0)
        self.ax.set_ylim(lo - pad, hi + pad)

    def _describe(self, i: int, y: float) -> str:
        eq, bal, bh = (v[i] for v in self._values)
        when = mdates.num2date(self._times[i]).strftime("%Y-%m-%d %H:%M UTC")
        hold = f"  buy & hold {bh:,.2f}" if np.isfinite(bh) else ""
        return f"{when}  equity {eq:,.2f}  balance {bal:,.2f}{hold} USDT"


class PnlFigure(_Base):
    """Net P&L of each closed trade (bars) and the running total."""

    MAX_BARS = 200

    def __init__(self) -> None:
        super().__init__()
        ax = self.ax = self.figure.add_subplot(111)
        self.figure.subplots_adjust(left=0.09, right=0.91, top=0.93, bottom=0.09)
        _style(ax)
        self.ax2 = ax.twinx()
        self.ax2.tick_params(labelsize=8)
        self.bars = PolyCollection([], linewidths=0)
        ax.add_collection(self.bars)
        ax.axhline(0, color="#555555", lw=0.8)
        (self.cum,) = self.ax2.plot([], [], color="#1f77b4", lw=1.6, label="cumulative")
        ax.set_xlabel("closed trade #", fontsize=8)
        ax.set_ylabel("P&L per trade (USDT)", fontsize=8)
        self.ax2.set_ylabel("cumulative (USDT)", fontsize=8)
        self.title = ax.set_title("P&L per trade, after fees", fontsize=10, loc="left")
        self._empty_text(ax, "No closed trades yet")

    def update(self, h: HistoryCopy) -> bool:
        pnl = np.asarray([t.pnl for t in h.trades], dtype=float)
        if len(pnl) == 0:
            self._show_empty(True)
            return False
        self._show_empty(False)
        n = np.arange(1, len(pnl) + 1, dtype=float)
        cum = np.cumsum(pnl)
        shown = slice(max(0, len(pnl) - self.MAX_BARS), len(pnl))
        x, y = n[shown], pnl[shown]
        self.bars.set_verts([[(xi - 0.4, 0), (xi - 0.4, yi), (xi + 0.4, yi), (xi + 0.4, 0)] for xi, yi in zip(x, y, strict=False)])
        self.bars.set_facecolor(np.where(y >= 0, UP, DOWN))
        self.cum.set_data(n[shown], cum[shown])
        self.ax.set_xlim(x[0] - 1, x[-1] + 1)
        self.ax2.set_xlim(x[0] - 1, x[-1] + 1)
        lim = float(np.abs(y).max()) * 1.15 or 1.0
        self.ax.set_ylim(-lim, lim)
        clo, chi = float(cum[shown].min()), float(cum[shown].max())
        pad = (chi - clo) * 0.1 or max(abs(chi) * 0.1, 1.0)
        self.ax2.set_ylim(clo - pad, chi + pad)
        wins = int((pnl > 0).sum())
        self.title.set_text(f"P&L per trade, after fees: {len(pnl)} trades, {wins} won, total {cum[-1]:+,.2f} USDT")
        return True


_NO_RECORD = "the walk-forward record of the agent's checkpoint shows here once it runs"


class TrainingFigure(_Base):
    """The learner: loss, reward and exploration (epsilon) against learner steps, and below them
    the walk-forward equity of the checkpoint in use (out of sample, next to buy-and-hold), with
    which checkpoint that is."""

    def __init__(self) -> None:
        super().__init__()
        # three learner rows sharing the steps axis, a spacer for their tick labels, the walk-forward row
        grid = self.figure.add_gridspec(5, 1, height_ratios=(1, 1, 1, 0.45, 1.6), hspace=0.15)
        first = self.figure.add_subplot(grid[0])
        axes = [first] + [self.figure.add_subplot(grid[i], sharex=first) for i in (1, 2)]
        self.figure.subplots_adjust(left=0.11, right=0.98, top=0.94, bottom=0.07)
        self.axes = axes
        self.lines = []
        for ax, name, colour in zip(axes, ("loss", "reward", "epsilon"), ("#d62728", "#2ca02c", "#1f77b4"), strict=False):
            _style(ax)
            ax.set_ylabel(name, fontsize=8)
            (line,) = ax.plot([], [], color=colour, lw=1.2)
            self.lines.append(line)
        axes[-1].set_xlabel("learner steps", fontsize=8)
        axes[-1].ticklabel_format(axis="x", useOffset=False, style="plain")   # 55008, not 0.01 + 5.5008e4
        self._empty_text(axes[0], "No learner steps yet (the DQN reports them once it trains)")
        self.wf = self.figure.add_subplot(grid[4])
        _style(self.wf)
        self.wf.set_ylabel("equity (x start)", fontsize=8)
        (self.wf_line,) = self.wf.plot([], [], color="#1f77b4", lw=1.2, label="checkpoint, out of sample")
        (self.wf_bh,) = self.wf.plot([], [], color="#b8860b", lw=1.0, ls=":", label="buy-and-hold")
        self.wf.legend(loc="upper left", fontsize=7, frameon=False)
        self.wf_text = self.wf.text(0.5, 0.5, _NO_RECORD, transform=self.wf.transAxes,
                                    ha="center", va="center", fontsize=10, color="#8a8f98")
        self._wf_key: object = None

    def _draw_walk_forward(self, info: dict) -> bool:
        wf = (info or {}).get("walk_forward") or {}
        key = (info or {}).get("summary")
        if key == self._wf_key:
            return False
        self._wf_key = key
        eq, bh = wf.get("equity") or {}, wf.get("buy_and_hold_equity") or {}
        if not eq.get("time_ms"):
            self.wf_line.set_data([], [])
            self.wf_bh.set_data([], [])
            self.wf_text.set_text(f"checkpoint {info.get('name')}: no walk-forward record in it" if info and
                                  info.get("name") else _NO_RECORD)
            self.wf_text.set_visible(True)
            return True
        import matplotlib.dates as mdates

        x = mdates.date2num(np.asarray(eq["time_ms"], dtype="datetime64[ms]"))
        y = np.asarray(eq["equity"], dtype=float)
        self.wf_line.set_data(x, y / y[0])
        if bh.get("time_ms"):
            xb = mdates.date2num(np.asarray(bh["time_ms"], dtype="datetime64[ms]"))
            yb = np.asarray(bh["equity"], dtype=float)
            self.wf_bh.set_data(xb, yb / yb[0])
        self.wf.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
        self.wf.relim()
        self.wf.autoscale_view()
        self.wf_text.set_visible(False)
        mine = wf.get("this_seed") or {}
        self.wf.set_title(f"{info.get('name')}: walk-forward {wf.get('dataset', '')} {wf.get('test_span', '')}: "
                          f"{mine.get('return_pct', float('nan')):+.1f} %, Sharpe {mine.get('sharpe', float('nan')):.2f}",
                          fontsize=9, loc="left")
        return True

    def update(self, h: HistoryCopy) -> bool:
        drew = self._draw_walk_forward(h.checkpoint)
        has_steps = bool(h.steps)
        if self.empty is not None:
            self.empty.set_visible(not has_steps)
        for ax in self.axes:
            ax.xaxis.set_visible(has_steps and ax is self.axes[-1])
        if not has_steps:
            return drew or bool(h.checkpoint)
        x = np.asarray(h.steps, dtype=float)
        for ax, line, y in zip(self.axes, self.lines, (h.loss, h.reward, h.epsilon), strict=False):
            y = np.asarray(y, dtype=float)
            line.set_data(x, y)
            finite = y[np.isfinite(y)]
            if len(finite):
                lo, hi = float(finite.min()), float(finite.max())
                pad = (hi - lo) * 0.08 or max(abs(hi) * 0.1, 1e-3)
                ax.set_ylim(lo - pad, hi + pad)
        span = (x[-1] - x[0]) or max(abs(x[-1]) * 0.01, 1.0)
        self.axes[-1].set_xlim(x[0] - span * 0.01, x[-1] + span * 0.02)
        parts = [f"{name} {v:.4g}" for name, v in (("loss", h.loss[-1]), ("reward", h.reward[-1]),
                                                    ("epsilon", h.epsilon[-1])) if math.isfinite(v)]
        parts.append(f"steps {int(h.steps[-1])}")
        self.axes[0].set_title("   ".join(parts), fontsize=10, loc="left")
        return True
