"""Any real OHLCV file in: CSV or Parquet, gzip or not, from the usual free sources.

One reader for every command that takes `--data` (backtest, train, optimize) and for
`python -m bot import`. What it does with a file, in order:

1. **Columns** by name, case- and punctuation-insensitive: a time column (`open_time`,
   `timestamp`, `unix`, `date`, ...), open/high/low/close, base volume (`volume`, `Volume BTC`,
   `VolumeFrom`, `volume_base`, ...) and quote volume (`VolumeTo`, `Volume USD(T)`, `turnover`,
   `quote_volume`, ...); `volume_column` picks the base volume by name. A file with only a quote
   volume gets volume = quote / close, and says so. A `symbol` column with one value names the
   data; with several, `symbol` picks the rows.
2. **Times**: Unix seconds, milliseconds, micro- or nanoseconds; ISO text; `%Y-%m-%d %I-%p`
   (CryptoDataDownload hourly); `DD.MM.YYYY` or `MM/DD/YYYY`, decided from the whole column (a
   first number above 12 means day-first, a second above 12 month-first; when every date fits
   both, the reading that puts the rows in a regular order wins, and a file that fits both
   equally is refused: `dayfirst` says which). Naive times are UTC unless `tz` names the zone.
3. **Rules never repaired**: a row with a NaN or non-positive price, a high below the body or a
   low above it, or a negative volume is refused with its line and field.
4. **Order**, repaired by default with a report (`strict` refuses instead): newest-first files
   are read in reverse (not a repair: a layout); rows out of place are moved; a timestamp that
   appears twice keeps its first row in the file (the report names the lines dropped); gaps
   stay gaps and are counted.
5. **Interval** inferred from the median step between candles, and a different `interval`
   asked for is refused (daily candles read as hourly would misstate every annualised number).
"""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bot.errors import DataError
from bot.market.candles import validate_candles
from bot.types import interval_ms, ms_to_iso

__all__ = ["FileOptions", "CandleFile", "read_candle_file", "infer_interval", "INTERVAL_OF_STEP"]

_FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01: recorded files are checked for order, not clock
_DAY = 86_400_000
_NON_TRADING_GAP = 4 * _DAY         # a weekend plus a holiday: not a gap in an exchange-calendar file

INTERVAL_OF_STEP = {60_000: "1", 180_000: "3", 300_000: "5", 900_000: "15", 1_800_000: "30",
                    3_600_000: "60", 7_200_000: "120", 14_400_000: "240", 21_600_000: "360",
                    43_200_000: "720", _DAY: "D", 7 * _DAY: "W"}

_TIME = ("opentime", "timestamp", "unix", "unixtimestamp", "time", "date", "datetime", "timeopen",
         "starttime", "start", "ts", "day")
_PRICE = {"open": ("open", "o", "openprice"), "high": ("high", "h", "highprice"), "low": ("low", "l", "lowprice"),
          "close": ("close", "c", "last", "closeprice", "adjclose")}
_BASE_VOLUME = ("volumefrom", "volumebase", "basevolume", "volbase", "basevol", "volume", "vol", "v")
_QUOTE_VOLUME = ("volumeto", "turnover", "quotevolume", "volumequote", "quoteassetvolume", "quotevol",
                 "volumeusd", "volumeusdt", "volumeusdc", "volumebusd", "volumeeur")
_QUOTES = ("USDT", "USDC", "BUSD", "USD", "EUR", "BTC", "ETH")
_SYMBOL = ("symbol", "pair", "ticker", "market", "instrument")


@dataclass(frozen=True)
class FileOptions:
    """How to read a file where it cannot tell by itself (all optional)."""

    symbol: str | None = None          # rows of this symbol, when the file holds several
    interval: str | None = None        # the interval the user expects; refused when the file disagrees
    dayfirst: bool | None = None       # None: decided from the whole date column
    tz: str | None = None              # zone of naive timestamps (default UTC)
    volume_column: str | None = None   # the column holding the base volume
    strict: bool = False               # refuse rows out of order, repeated times and gaps


@dataclass(frozen=True)
class CandleFile:
    """A file read into a canonical candle frame, with what was done to read it."""

    path: Path
    frame: pd.DataFrame                 # open_time index (ms, UTC), open..turnover, oldest first
    interval: str                       # inferred from the timestamps
    symbol: str | None = None           # named by the file's symbol column
    notes: list[str] = field(default_factory=list)     # how it was read
    repairs: list[str] = field(default_factory=list)   # rows moved, repeats dropped, gaps left (empty: none)

    def report(self) -> list[str]:
        """The lines a command prints about the file."""
        head = (f"data {self.path.name}: {len(self.frame)} candles of {self.interval}, "
                f"{ms_to_iso(int(self.frame.index[0]))} .. {ms_to_iso(int(self.frame.index[-1]))}")
        return [head, *(f"  {n}" for n in [*self.notes, *self.repairs])]


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


class _Reader:
    def __init__(self, path: Path, options: FileOptions) -> None:
        self.path = path
        self.opt = options
        self.notes: list[str] = []
        self.repairs: list[str] = []
        self.first_line = 1   # file line of the first data row (CSV); 0 = Parquet rows

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> pd.DataFrame:
        p = self.path
        if not p.exists():
            raise DataError(f"data file {p} does not exist")
        name = p.name.lower()
        gz = name.endswith(".gz")
        base = name[:-3] if gz else name
        try:
            if base.endswith((".parquet", ".pq")):
                if gz:
                    with gzip.open(p, "rb") as fh:
                        raw = pd.read_parquet(io.BytesIO(fh.read()))
                else:
                    raw = pd.read_parquet(p)
                if raw.index.name and _norm(raw.index.name) in _TIME:
                    raw = raw.reset_index()
                self.first_line = 0
                return raw
            if base.endswith((".csv", ".txt")):
                opener = gzip.open if gz else open
                with opener(p, "rt", encoding="utf-8-sig") as fh:
                    head = [fh.readline() for _ in range(2)]
                # a banner line before the header (CryptoDataDownload): fewer fields than the next line
                skip = 1 if head[1] and head[0].count(",") < head[1].count(",") else 0
                self.first_line = 2 + skip
                return pd.read_csv(p, skiprows=skip, compression="gzip" if gz else None)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"data file {p} is unreadable ({type(exc).__name__}: {exc})") from exc
        raise DataError(f"data file {p}: unknown format {p.suffix!r}; allowed: .csv, .csv.gz, .parquet, .parquet.gz")

    def where(self, i: int) -> str:
        """The file position of raw row i, as a person finds it in an editor."""
        return f"line {i + self.first_line}" if self.first_line else f"row {i + 1}"

    # -- columns ----------------------------------------------------------------------------
    def columns(self, raw: pd.DataFrame, symbol: str | None) -> dict[str, str | None]:
        cols = [str(c) for c in raw.columns]
        by_norm: dict[str, str] = {}
        for c in cols:
            by_norm.setdefault(_norm(c), c)
        have = ", ".join(cols)

        def first(names: tuple[str, ...]) -> str | None:
            return next((by_norm[n] for n in names if n in by_norm), None)

        found: dict[str, str | None] = {"time": first(_TIME)}
        for k, names in _PRICE.items():
            found[k] = first(names)
        missing = [k for k in ("time", "open", "high", "low", "close") if found[k] is None]
        if missing:
            raise DataError(f"data file {self.path} lacks column(s) {', '.join(missing)} (have {have})")
        coin = _base_coin(symbol)
        quote = first(_QUOTE_VOLUME)
        if self.opt.volume_column:
            base = by_norm.get(_norm(self.opt.volume_column))
            if base is None:
                raise DataError(f"data file {self.path} has no column {self.opt.volume_column!r} "
                                f"(--volume-column); have {have}")
        else:
            # `Volume BTC` / `volume_eth`: a volume named after a coin that is not a quote currency
            coin_named = [c for n, c in by_norm.items() if n.startswith("volume") and n[6:].isalpha()
                          and n[6:].upper() not in _QUOTES and n not in _QUOTE_VOLUME and n != "volume"]
            named = [by_norm[f"volume{coin.lower()}"]] if coin and f"volume{coin.lower()}" in by_norm else []
            base = next(iter(named + [c for c in coin_named if _norm(c) in _BASE_VOLUME] + coin_named), None)
            if base is None:
                base = first(_BASE_VOLUME)
            elif quote is None:
                quote = first(("volume", "vol"))   # CryptoDataDownload's older files: volume_btc + volume (quote)
        if quote == base:
            quote = None
        found["volume"], found["turnover"] = base, quote
        found["symbol"] = first(_SYMBOL)
        return found

    # -- times ------------------------------------------------------------------------------
    def times(self, col: pd.Series, name: str) -> np.ndarray:
        s = col
        if not pd.api.types.is_numeric_dtype(s.dtype):
            text = s.astype(str).str.strip()
            if text.str.fullmatch(r"\d+(\.\d+)?").all():
                s = pd.to_numeric(text)
            else:
                return self._text_times(text, name)
        v = np.asarray(s, dtype=np.float64)
        bad = ~np.isfinite(v)
        if bad.any():
            raise DataError(f"data file {self.path}: {self.where(int(np.flatnonzero(bad)[0]))}: "
                            f"column {name!r} is empty")
        top = float(np.nanmax(np.abs(v))) if len(v) else 0.0
        unit, scale = (("seconds", 1e3) if top < 1e11 else ("milliseconds", 1.0) if top < 1e14
                       else ("microseconds", 1e-3) if top < 1e17 else ("nanoseconds", 1e-6))
        self.notes.append(f"times: Unix {unit} in column {name!r}")
        return np.round(v * scale).astype(np.int64)

    def _text_times(self, text: pd.Series, name: str) -> np.ndarray:
        if text.str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}-(?:AM|PM)").all():
            parsed = pd.to_datetime(text, format="%Y-%m-%d %I-%p")
        else:
            m = text.str.extract(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{2,4})(.*)$")
            if m[0].notna().all():
                parsed = self._day_month(text, m, name)
            else:
                parsed = self._parse(text, "ISO8601", name)
        return self._to_utc_ms(parsed, text, name)

    def _parse(self, text: pd.Series, fmt: str, name: str) -> pd.Series:
        try:
            return pd.to_datetime(text, format=fmt)
        except (ValueError, TypeError):
            pass
        try:
            return pd.to_datetime(text, format="mixed", utc=True)
        except (ValueError, TypeError):
            bad = next(i for i, x in enumerate(text) if _not_a_time(x))
            raise DataError(f"data file {self.path}: {self.where(bad)}: {text.iloc[bad]!r} in column {name!r} "
                            "is not a time") from None

    def _day_month(self, text: pd.Series, m: pd.DataFrame, name: str) -> pd.Series:
        a, b = m[0].astype(int).to_numpy(), m[2].astype(int).to_numpy()
        year = m[3].astype(int).to_numpy()
        year = np.where(year < 100, np.where(year < 70, 2000 + year, 1900 + year), year)
        rest = m[4].fillna("")

        def build(dayfirst: bool) -> pd.Series:
            day, month = (a, b) if dayfirst else (b, a)
            iso = pd.Series([f"{y:04d}-{mo:02d}-{d:02d}" for y, mo, d in zip(year, month, day, strict=True)],
                            index=text.index) + rest
            return self._parse(iso, "ISO8601", name)

        if self.opt.dayfirst is not None:
            wrong = b if self.opt.dayfirst else a
            if (wrong > 12).any():
                i = int(np.flatnonzero(wrong > 12)[0])
                raise DataError(f"data file {self.path}: {self.where(i)}: {text.iloc[i]!r} cannot be "
                                f"{'day-first' if self.opt.dayfirst else 'month-first'} as asked")
            self.notes.append(f"dates: {'day' if self.opt.dayfirst else 'month'}-first, as asked")
            return build(self.opt.dayfirst)
        if (a > 12).any() and (b > 12).any():
            i, j = int(np.flatnonzero(a > 12)[0]), int(np.flatnonzero(b > 12)[0])
            raise DataError(f"data file {self.path}: column {name!r} mixes day-first ({self.where(i)}: "
                            f"{text.iloc[i]!r}) and month-first ({self.where(j)}: {text.iloc[j]!r}) dates")
        if (a > 12).any() or (b > 12).any():
            dayfirst = bool((a > 12).any())
            i = int(np.flatnonzero((a if dayfirst else b) > 12)[0])
            self.notes.append(f"dates: {'day' if dayfirst else 'month'}-first (decided by {self.where(i)}: "
                              f"{text.iloc[i]!r})")
            return build(dayfirst)
        # every date fits both readings: the one that gives the rows a regular order wins
        scores = {df: _disorder(build(df)) for df in (True, False)}
        if scores[True] == scores[False]:
            raise DataError(f"data file {self.path}: dates like {text.iloc[0]!r} in column {name!r} read as "
                            "day-first or month-first alike; say which with --dayfirst or --monthfirst")
        dayfirst = scores[True] < scores[False]
        self.notes.append(f"dates: {'day' if dayfirst else 'month'}-first (the only reading that keeps the rows "
                          "in a regular order)")
        return build(dayfirst)

    def _to_utc_ms(self, parsed: pd.Series, text: pd.Series, name: str) -> np.ndarray:
        if parsed.isna().any():
            bad = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise DataError(f"data file {self.path}: {self.where(bad)}: {text.iloc[bad]!r} in column {name!r} "
                            "is not a time")
        if parsed.dt.tz is None:
            zone = self.opt.tz or "UTC"
            try:
                parsed = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
            except Exception as exc:  # an unknown zone name
                raise DataError(f"--tz {zone!r} is not a time zone ({exc})") from exc
            if parsed.isna().any():
                bad = int(np.flatnonzero(parsed.isna().to_numpy())[0])
                raise DataError(f"data file {self.path}: {self.where(bad)}: {text.iloc[bad]!r} does not exist or "
                                f"is ambiguous in {zone} (a daylight-saving change)")
            if self.opt.tz:
                self.notes.append(f"times: naive, read in {zone}")
        else:
            parsed = parsed.dt.tz_convert("UTC")
        return np.asarray(pd.DatetimeIndex(parsed).as_unit("ms").asi8, dtype=np.int64)

    # -- rows -------------------------------------------------------------------------------
    def check_rules(self, ohlc: np.ndarray, volume: np.ndarray) -> None:
        """Rows that break OHLC rules are refused, never repaired."""
        names = ("open", "high", "low", "close")
        checks = [(~np.isfinite(ohlc[:, k]), names[k], "is empty or not a number") for k in range(4)]
        checks += [(ohlc[:, k] <= 0, names[k], "is not a positive price") for k in range(4)]
        body_hi, body_lo = np.maximum(ohlc[:, 0], ohlc[:, 3]), np.minimum(ohlc[:, 0], ohlc[:, 3])
        checks += [(ohlc[:, 1] < body_hi, "high", "is below the candle's body (open/close)"),
                   (ohlc[:, 2] > body_lo, "low", "is above the candle's body (open/close)"),
                   (~np.isfinite(volume), "volume", "is empty or not a number"),
                   (volume < 0, "volume", "is negative")]
        bad_rows = [(int(np.flatnonzero(mask)[0]), int(mask.sum()), f, why) for mask, f, why in checks if mask.any()]
        if bad_rows:
            i, _count, f, why = min(bad_rows)
            value = volume[i] if f == "volume" else ohlc[i, names.index(f)]
            total = int(np.logical_or.reduce([m for m, *_ in checks]).sum())
            more_txt = f"; {total - 1} more row(s) break the rules" if total > 1 else ""
            shown = f" {float(value):g}" if np.isfinite(value) else ""
            raise DataError(f"data file {self.path}: {self.where(i)}: field {f}{shown} {why}{more_txt} "
                            "(such rows are refused, not repaired)")

    def order(self, t: np.ndarray) -> np.ndarray:
        """Row order that puts the file oldest first, repairing (or refusing) what is out of place."""
        n = len(t)
        d = np.diff(t)
        rows = np.arange(n)
        if n > 1 and (d < 0).sum() > (d > 0).sum():
            rows = rows[::-1]
            self.notes.append("rows newest first: read in reverse")
            d = np.diff(t[rows])
        if (d < 0).any():
            i = int(rows[int(np.flatnonzero(d < 0)[0]) + 1])
            if self.opt.strict:
                raise DataError(f"data file {self.path}: rows are not sorted by time ({self.where(i)} goes back "
                                "in time; --strict refuses to repair)")
            sorted_rows = rows[np.argsort(t[rows], kind="stable")]
            moved = int((sorted_rows != rows).sum())
            self.repairs.append(f"repaired: {moved} row(s) out of time order moved into place (first: {self.where(i)})")
            rows = sorted_rows
        return rows

    def dedupe(self, t: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Keep one row per timestamp: the first in the file."""
        ts = t[rows]
        dup = np.flatnonzero(ts[1:] == ts[:-1]) + 1
        if not len(dup):
            return rows
        if self.opt.strict:
            i = int(rows[dup[0]])
            raise DataError(f"data file {self.path}: {self.where(i)} repeats the time {ms_to_iso(int(ts[dup[0]]))} "
                            "(--strict refuses to repair)")
        keep = np.ones(len(rows), dtype=bool)
        same = changed = 0
        examples: list[str] = []
        for start in np.unique(ts[dup]):
            group = rows[ts == start]
            first_row = int(group.min())
            others = [int(g) for g in group if g != first_row]
            for g in others:
                keep[np.flatnonzero(rows == g)[0]] = False
                if np.array_equal(values[g], values[first_row], equal_nan=True):
                    same += 1
                else:
                    changed += 1
                    if len(examples) < 3:
                        examples.append(f"{ms_to_iso(int(start))}: kept {self.where(first_row)}, dropped "
                                        f"{self.where(g)}")
        what = f"repaired: {same + changed} repeated timestamp(s) dropped ({same} exact cop{'y' if same == 1 else 'ies'}"
        what += f", {changed} with other prices: " + "; ".join(examples) if changed else ""
        self.repairs.append(what + ("; ..." if changed > len(examples) else "") + ")")
        return rows[keep]

    def gaps(self, t: np.ndarray, step: int, calendar: bool) -> None:
        d = np.diff(t)
        big = d > step
        if calendar:
            big &= d > _NON_TRADING_GAP   # weekends and holidays are the calendar, not gaps
        if not big.any():
            return
        missing = int(((d[big] // step) - 1).sum())
        k = int(np.argmax(np.where(big, d, 0)))
        largest = f"the largest {_span(int(d[k]))} after {ms_to_iso(int(t[k]))}"
        if self.opt.strict:
            raise DataError(f"data file {self.path}: {int(big.sum())} gap(s) in the candles, {largest} "
                            "(--strict refuses them)")
        self.repairs.append(f"gaps: {int(big.sum())} left as gaps ({missing} candle(s) missing; {largest})")


def _base_coin(symbol: str | None) -> str:
    if not symbol:
        return ""
    s = re.sub(r"[^A-Z0-9]", "", symbol.upper())
    for q in _QUOTES:
        if s.endswith(q) and len(s) > len(q):
            return s[: -len(q)]
    return s


def _not_a_time(x: str) -> bool:
    try:
        pd.Timestamp(x)
        return False
    except (ValueError, TypeError):
        return True


def _disorder(parsed: pd.Series) -> int:
    """How far from one regular step a reading of the dates leaves the rows (lower is better)."""
    t = np.asarray(pd.DatetimeIndex(parsed).asi8)
    d = np.diff(t)
    if not len(d):
        return 0
    if (d < 0).sum() > (d > 0).sum():
        d = -d
    step = np.median(d)
    return int((d < 0).sum() * 1000 + (d != step).sum())


def _span(ms: int) -> str:
    if ms >= _DAY:
        return "1 day" if ms == _DAY else f"{ms / _DAY:g} days"
    return f"{ms / 3_600_000:g} h" if ms >= 3_600_000 else f"{ms / 60_000:g} min"


def infer_interval(times_ms: np.ndarray) -> str:
    """The Bybit interval of candles at `times_ms` (oldest first): their median step."""
    d = np.diff(np.asarray(times_ms, dtype=np.int64))
    d = d[d > 0]
    if not len(d):
        raise DataError("cannot infer the candle interval from fewer than two distinct times")
    step = int(np.median(d))
    if step in INTERVAL_OF_STEP:
        return INTERVAL_OF_STEP[step]
    if 28 * _DAY <= step <= 31 * _DAY:
        return "M"
    raise DataError(f"candles are {_span(step)} apart, which is not a Bybit interval "
                    f"({', '.join(INTERVAL_OF_STEP.values())}, M)")


def read_candle_file(path: str | Path, options: FileOptions | None = None) -> CandleFile:
    """Read any OHLCV file (see the module docstring); a `DataError` names what is wrong."""
    from bot.analysis.metrics import has_exchange_calendar

    opt = options or FileOptions()
    r = _Reader(Path(path), opt)
    raw = r.load()
    if raw.empty:
        raise DataError(f"data file {r.path} has no rows")
    symbol_hint = opt.symbol
    cols = r.columns(raw, symbol_hint)
    file_symbol = None
    if cols["symbol"] is not None:
        names = raw[cols["symbol"]].astype(str).str.upper().str.replace(r"[^A-Z0-9]", "", regex=True)
        distinct = sorted(set(names))
        if len(distinct) == 1:
            file_symbol = distinct[0]
        else:
            want = re.sub(r"[^A-Z0-9]", "", (opt.symbol or "").upper())
            if want not in distinct:
                raise DataError(f"data file {r.path} holds {len(distinct)} symbols ({', '.join(distinct[:8])}"
                                f"{', ...' if len(distinct) > 8 else ''}); pick one with --symbols")
            raw = raw[(names == want).to_numpy()].reset_index(drop=True)
            file_symbol = want
        if not opt.volume_column and file_symbol and symbol_hint is None:
            cols = r.columns(raw, file_symbol)   # `Volume BTC` is the base volume of BTC/USD
    t = r.times(raw[cols["time"]], str(cols["time"]))
    ohlc = raw[[cols["open"], cols["high"], cols["low"], cols["close"]]].apply(
        pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    turnover = (np.full(len(raw), np.nan) if cols["turnover"] is None
                else pd.to_numeric(raw[cols["turnover"]], errors="coerce").to_numpy(dtype=np.float64))
    if cols["volume"] is not None:
        volume = pd.to_numeric(raw[cols["volume"]], errors="coerce").to_numpy(dtype=np.float64)
        r.notes.append(f"volume: column {cols['volume']!r}" +
                       (f", quote volume: {cols['turnover']!r}" if cols["turnover"] else ""))
    elif cols["turnover"] is not None:
        volume = turnover / ohlc[:, 3]
        r.notes.append(f"volume: no base volume; estimated as {cols['turnover']!r} / close")
    else:
        raise DataError(f"data file {r.path} has no volume column (have {', '.join(map(str, raw.columns))}); "
                        "name it with --volume-column")
    r.check_rules(ohlc, volume)
    rows = r.order(t)
    values = np.column_stack([ohlc, volume])
    rows = r.dedupe(t, rows, values)
    ts = t[rows]
    interval = infer_interval(ts)
    if opt.interval is not None and str(opt.interval) != interval:
        raise DataError(f"data file {r.path}: its candles are {_span(interval_ms(interval))} apart (interval "
                        f"{interval}), not --interval {opt.interval}; drop --interval or give a file of that interval")
    calendar = has_exchange_calendar(ts)
    if calendar:
        r.notes.append("no weekend candles: an exchange calendar (metrics use 252 trading days a year)")
    r.gaps(ts, interval_ms(interval), calendar)
    frame = pd.DataFrame({
        "open": ohlc[rows, 0], "high": ohlc[rows, 1], "low": ohlc[rows, 2], "close": ohlc[rows, 3],
        "volume": volume[rows], "turnover": turnover[rows],
    }, index=pd.Index(ts, name="open_time"))
    validate_candles(frame, f"{file_symbol or opt.symbol or 'DATA'} ({r.path.name})", now_ms=_FAR_FUTURE_MS)
    return CandleFile(r.path, frame, interval, file_symbol, r.notes, r.repairs)
