"""Every setting of the trading terminal, with its default, unit and what it does.

Settings are loaded once by `load_settings()` and passed into every component; no other module
reads the environment. Values come, strongest first, from keyword overrides (tests, CLI flags),
process environment variables, a `.env` file, and the defaults below. Secrets (API keys, tokens)
come only from the environment or `.env`, never from code, and never appear in `repr()`.

`load_settings()` validates everything and raises `ConfigError` naming the setting, the bad value
and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError

__all__ = ["Settings", "load_settings", "ConfigError", "PROJECT_ROOT", "BYBIT_INTERVALS"]

PROJECT_ROOT = Path(__file__).resolve().parent

# Bybit V5 kline intervals: minutes as strings, then day / week / month.
BYBIT_INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")


def _s(default: Any, doc: str, *, secret: bool = False, choices: tuple | None = None,
       lo: float | None = None, hi: float | None = None) -> Any:
    """A setting: default, one-line doc, and what is allowed."""
    meta = {"doc": doc, "secret": secret, "choices": choices, "lo": lo, "hi": hi}
    if isinstance(default, (list, tuple)):
        return field(default=tuple(default), metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True)
class Settings:
    """All settings of the bot. Frozen: load once, pass everywhere."""

    # --- market -----------------------------------------------------------------------------
    EXCHANGE_CATEGORY: str = _s("linear", "Bybit market: linear USDT perpetuals (long+short) or spot (long only)",
                                choices=("linear", "spot"))
    FALLBACK_SYMBOLS: tuple[str, ...] = _s(("BTCUSDT", "ETHUSDT", "SOLUSDT"),
                                           "pairs traded when the hot-pair ranking is unavailable")
    CANDLE_INTERVAL: str = _s("60", "candle interval the bot trades on (Bybit interval)", choices=BYBIT_INTERVALS)
    LEVERAGE: float = _s(1.0, "leverage for linear perpetuals (margin = notional / leverage)", lo=1, hi=10)
    QUOTE_COIN: str = _s("USDT", "settlement / quote coin")

    # --- paper wallet and costs ---------------------------------------------------------------
    PAPER_START_BALANCE: float = _s(1000.0, "paper wallet start balance, USDT", lo=1)
    FEE_RATE: float = _s(0.00055, "taker fee, fraction of notional per side (Bybit linear VIP0: 0.055 %)", lo=0, hi=0.01)
    MAKER_FEE_RATE: float = _s(0.0002, "maker fee, fraction of notional per side", lo=-0.001, hi=0.01)
    SLIPPAGE_BPS: float = _s(2.0, "market-order slippage in paper/backtest, basis points of price", lo=0, hi=500)
    SIMULATION_ORDER_DELAY: float = _s(0.2, "seconds the paper exchange waits before filling (latency)", lo=0, hi=30)

    # --- sizing and risk --------------------------------------------------------------------
    POSITION_SIZE_PCT: float = _s(0.05, "order size as a fraction of equity (5 %)", lo=0.001, hi=1)
    MIN_ORDER_USDT: float = _s(10.0, "smallest order notional, USDT", lo=0)
    MAX_OPEN_POSITIONS: int = _s(3, "most positions open at once", lo=1, hi=100)
    MAX_RISK_PER_TRADE: float = _s(0.02, "max loss from entry to stop, fraction of equity", lo=0.0001, hi=1)
    MAX_TOTAL_RISK: float = _s(0.06, "max summed entry-to-stop risk of open positions, fraction of equity",
                               lo=0.0001, hi=1)
    STOP_LOSS_MODE: str = _s("atr", "stop-loss from ATR multiple or fixed percent", choices=("atr", "percent"))
    STOP_ATR_MULT: float = _s(2.5, "stop-loss distance in ATRs", lo=0.1, hi=50)
    STOP_LOSS_PCT: float = _s(0.02, "stop-loss distance as a fraction of entry (percent mode)", lo=0.0001, hi=0.5)
    TAKE_PROFIT_ATR_MULT: float = _s(5.0, "take-profit distance in ATRs", lo=0.1, hi=100)
    TRAILING_STOP: bool = _s(False, "move the stop behind the price as it moves in our favour")
    TRAILING_ATR_MULT: float = _s(2.5, "trailing-stop distance in ATRs", lo=0.1, hi=50)
    MIN_REWARD_RISK: float = _s(1.5, "minimum take-profit distance / stop distance", lo=0, hi=100)
    DAILY_LOSS_LIMIT: float = _s(0.05, "max loss in one UTC day, fraction of day-start equity; breaking it stops entries",
                                 lo=0.001, hi=1)
    MAX_DRAWDOWN: float = _s(0.15, "max drawdown from peak equity; breaking it stops entries", lo=0.001, hi=1)
    REGIME_SIZE_TRENDING: float = _s(1.0, "size multiplier in a trending regime", lo=0, hi=2)
    REGIME_SIZE_CHOPPY: float = _s(0.5, "size multiplier in a choppy regime", lo=0, hi=2)
    REGIME_SIZE_VOLATILE: float = _s(0.25, "size multiplier in a volatile regime", lo=0, hi=2)
    VOLATILE_STOP_MULT: float = _s(1.5, "stop distance multiplier in a volatile regime", lo=1, hi=10)
    VOLATILITY_SPIKE_RATIO: float = _s(2.0, "ATR / its 100-candle median above which size is cut", lo=1, hi=20)

    # --- indicators and regime --------------------------------------------------------------
    ATR_PERIOD: int = _s(14, "ATR period, candles", lo=2, hi=500)
    ADX_PERIOD: int = _s(14, "ADX period, candles", lo=2, hi=500)
    ADX_TREND_THRESHOLD: float = _s(25.0, "ADX above this = trending regime", lo=0, hi=100)
    BB_PERIOD: int = _s(20, "Bollinger period, candles", lo=2, hi=500)
    BB_STD: float = _s(2.0, "Bollinger band width in standard deviations", lo=0.1, hi=10)
    BB_VOLATILE_PERCENTILE: float = _s(90.0, "bandwidth above its rolling percentile = volatile regime", lo=1, hi=99.9)
    REGIME_LOOKBACK: int = _s(100, "candles in the rolling bandwidth percentile window", lo=10, hi=10000)
    SR_TOLERANCE_ATR: float = _s(0.5, "support/resistance clustering tolerance, in ATRs", lo=0.01, hi=10)
    STATE_WINDOW: int = _s(32, "log-return window in the agent's state vector, candles", lo=2, hi=512)

    # --- agent and learning -----------------------------------------------------------------
    STRATEGY: str = _s("dqn", "decision maker: dqn (self-learning agent), analyst (rules), sma (baseline)")
    TRAINING_ENABLED: bool = _s(True, "learn online while paper trading")
    SEED: int = _s(7, "random seed for the agent and the environment", lo=0)
    CHECKPOINT_EVERY: int = _s(500, "learner steps between checkpoints", lo=1)
    CHECKPOINTS_KEPT: int = _s(3, "checkpoints kept on disk", lo=1, hi=100)
    DQN_SHIPPED_MODEL: bool = _s(True, "with no checkpoint in <HISTORICAL_DATA_PATH>/models, start the agent "
                                 "from the trained default the project ships (historical_data/models/dqn-default.pt)")
    EPISODE_LENGTH: int = _s(720, "candles per training episode", lo=10)
    REWARD_DRAWDOWN_PENALTY: float = _s(0.0, "reward penalty per unit of drawdown increase", lo=0)
    REWARD_TRADE_PENALTY: float = _s(0.0, "reward penalty per position change (on top of fees)", lo=0)
    REWARD_LOSING_TIME_PENALTY: float = _s(0.0, "reward penalty per candle held in a losing trade", lo=0)
    REWARD_NO_STOP_BONUS: float = _s(0.0, "reward bonus for closing a trade without its stop-loss", lo=0)

    # --- hot pairs --------------------------------------------------------------------------
    TOP_PAIRS_COUNT: int = _s(5, "how many hot pairs are traded", lo=1, hi=100)
    PAIR_REFRESH_MINUTES: float = _s(60.0, "minutes between hot-pair ranking refreshes", lo=1)
    PAIR_WEIGHT_TURNOVER: float = _s(0.5, "ranking weight of 24 h turnover", lo=0)
    PAIR_WEIGHT_VOLATILITY: float = _s(0.3, "ranking weight of volatility (ATR %)", lo=0)
    PAIR_WEIGHT_MOMENTUM: float = _s(0.2, "ranking weight of 24 h momentum", lo=0)
    PAIR_MIN_TURNOVER: float = _s(10_000_000.0, "ignore pairs below this 24 h turnover, USDT", lo=0)

    # --- promotion paper -> live ------------------------------------------------------------
    AUTO_LIVE: bool = _s(False, "switch to live by itself when the promotion gate passes (needs keys + consent)")
    PROMOTION_MIN_TRADES: int = _s(30, "closed paper trades needed before live", lo=1)
    PROMOTION_MIN_DAYS: float = _s(7.0, "days of paper record needed before live", lo=0)
    PROMOTION_MIN_PROFIT_FACTOR: float = _s(1.2, "paper profit factor needed before live", lo=0)
    PROMOTION_MAX_DRAWDOWN: float = _s(0.10, "max paper drawdown allowed before live", lo=0, hi=1)

    # --- replay and data --------------------------------------------------------------------
    HISTORICAL_DATA_PATH: str = _s("historical_data", "where the candle cache, journal, models and experience live")
    REPLAY_SPEED: float = _s(0.0, "replay pace: 0 = as fast as possible, 1 = real time, N = N x real time", lo=0)
    REPLAY_CANDLE_SECONDS: float = _s(1.0, "seconds between replayed candles in the paper loop when offline", lo=0)
    MARKET_POLL_SECONDS: float = _s(10.0, "seconds between polls of Bybit for new closed candles", lo=0.1)

    # --- errors, restart, reconcile ---------------------------------------------------------
    LOG_FILE: str = _s("logs/bot.log", "rotating log file (relative to the project folder)")
    LOG_LEVEL: str = _s("INFO", "log level", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
    LOG_MAX_BYTES: int = _s(5_000_000, "log file size before it rotates, bytes", lo=10_000)
    LOG_BACKUP_COUNT: int = _s(5, "rotated log files kept", lo=0, hi=100)
    CRITICAL_ERROR_CODES: tuple[int, ...] = _s((10003, 10004, 10005, 10010, 33004, 401),
                                               "exchange codes that stop trading and ask for a restart")
    ERROR_RATE_THRESHOLD: int = _s(10, "errors within ERROR_WINDOW_SECONDS that open the circuit breaker", lo=1)
    ERROR_WINDOW_SECONDS: float = _s(300.0, "sliding window for counting errors, seconds", lo=1)
    CIRCUIT_COOLDOWN_SECONDS: float = _s(300.0, "seconds the circuit stays open before a half-open probe", lo=0)
    CIRCUIT_MAX_TRIPS: int = _s(3, "trips within an hour after which trading stays stopped", lo=1)
    RESTART_MAX_PER_HOUR: int = _s(5, "auto-restarts allowed per hour", lo=0)
    RESTART_BACKOFF_SECONDS: float = _s(5.0, "first auto-restart delay; doubles each time", lo=0)
    RECONCILE_INTERVAL_SECONDS: float = _s(180.0, "seconds between live reconciliations with the exchange", lo=5)
    ADOPTED_POSITIONS: str = _s("manage", "positions found on the exchange but not in the journal",
                                choices=("manage", "close"))
    CRASH_AT: str = _s("", "crash-safety tests only: kill the process (SIGKILL) at this point of the first order; "
                           "empty = never", choices=("", "after_intent", "after_send", "after_fill", "after_outcome"))

    # --- secrets and endpoints (secrets only from the environment or .env) --------------------
    BYBIT_API_KEY: str = _s("", "Bybit API key", secret=True)
    BYBIT_API_SECRET: str = _s("", "Bybit API secret", secret=True)
    USE_TESTNET: bool = _s(False, "use Bybit testnet instead of mainnet")
    BYBIT_DEMO: bool = _s(False, "Bybit demo trading: the live path with play money on Bybit's own servers "
                                 "(pybit demo mode; keys of your Bybit demo account)")
    BYBIT_BASE_URL: str = _s("", "empty = pybit's official endpoint; tests point it at http://127.0.0.1:PORT")
    BYBIT_TIMEOUT: float = _s(10.0, "HTTP timeout for Bybit calls, seconds", lo=0.1, hi=120)
    BYBIT_WS_URL: str = _s("", "empty = pybit's official WebSocket streams (none when BYBIT_BASE_URL is set); "
                               "tests point it at ws://127.0.0.1:PORT")
    BYBIT_WS_PING_SECONDS: float = _s(20.0, "seconds between WebSocket pings (Bybit asks for 20)", lo=0.2, hi=60)
    BYBIT_WS_STALL_SECONDS: float = _s(60.0, "a WebSocket silent this long is taken as stalled and reopened; "
                                             "REST polling covers the gap", lo=0.5, hi=600)
    ACCOUNT_REFRESH_SECONDS: float = _s(2.0, "live: the running bot reads balance and positions from Bybit at most "
                                             "this often (every order or stop change reads anew)", lo=0, hi=60)
    ACCOUNT_STREAM_REFRESH_SECONDS: float = _s(60.0, "live, while Bybit's private streams are up (they push every "
                                                    "fill and change): balance and positions are read over REST "
                                                    "only this often", lo=1, hi=3600)
    CLOSE_DEADLINE_SECONDS: float = _s(300.0, "seconds a close (reduce-only) order is retried through Bybit errors "
                                              "before a critical alert; entries keep a short budget", lo=1, hi=3600)
    ORDER_LOOKUP_SECONDS: float = _s(10.0, "seconds an order Bybit accepted is looked up when look-ups fail, "
                                           "before it is reported as 'accepted, outcome unknown' (exit code 4)",
                                     lo=0, hi=600)
    TELEGRAM_BOT_TOKEN: str = _s("", "Telegram bot token; empty disables alerts", secret=True)
    TELEGRAM_CHAT_ID: str = _s("", "the only Telegram chat the bot ever messages")
    TELEGRAM_BASE_URL: str = _s("", "empty = api.telegram.org; tests point it at a loopback fake")
    TELEGRAM_COMMANDS: bool = _s(True, "answer /status, /pause, /stop ... from TELEGRAM_CHAT_ID (long polling)")
    DASHBOARD_ENABLED: bool = _s(False, "start the web dashboard with the window or `bot paper|live`")
    DASHBOARD_HOST: str = _s("127.0.0.1", "address the dashboard binds; anything but loopback needs DASHBOARD_TOKEN")
    DASHBOARD_PORT: int = _s(8765, "dashboard port", lo=1, hi=65535)
    DASHBOARD_TOKEN: str = _s("", "dashboard access token (long, random); required off loopback", secret=True)
    DASHBOARD_ALLOW_CONTROL: bool = _s(False, "let the dashboard pause, resume and close all (read-only when false)")
    LLM_BASE_URL: str = _s("", "OpenAI-compatible endpoint for the optional LLM reviewers; empty = rules only")
    LLM_API_KEY: str = _s("", "key for the LLM endpoint", secret=True)
    LLM_MODEL: str = _s("", "model name for the LLM reviewers")
    LLM_TIMEOUT: float = _s(20.0, "seconds before an LLM review falls back to the rules", lo=0.1, hi=600)

    # --- analyst strategy and reviews -------------------------------------------------------
    ANALYST_ENTRY_INTERVAL: str = _s("240", "analyst entry timeframe", choices=BYBIT_INTERVALS)
    ANALYST_CONFIRM_INTERVAL: str = _s("D", "analyst confirmation (higher) timeframe", choices=BYBIT_INTERVALS)
    ANALYST_MIN_CONFIDENCE: float = _s(45.0, "analyst skips setups below this confidence (0-100)", lo=0, hi=100)
    ANALYST_REVIEWER: str = _s("rules", "who reviews proposals for setup quality", choices=("rules", "llm"))
    RISK_REVIEWER: str = _s("rules", "who reviews proposals for risk", choices=("rules", "llm"))
    LESSON_MIN_SAMPLES: int = _s(20, "trades needed before a journal pattern becomes a lesson", lo=1)
    LESSON_CONFIDENCE_STEP: float = _s(10.0, "points a losing-pattern lesson adds to the analyst's minimum confidence",
                                       lo=0, hi=100)
    LESSON_MAX_CONFIDENCE_RAISE: float = _s(25.0, "bound: lessons never raise the minimum confidence by more", lo=0, hi=100)
    LESSON_MAX_MIN_ADX: float = _s(35.0, "bound: lessons never require an ADX above this", lo=0, hi=100)
    LESSON_COUNTERFACTUAL_DAYS: float = _s(30.0, "days a vetoed proposal is replayed to find its outcome", lo=1, hi=365)
    LLM_ATTACH_CHART: bool = _s(False, "attach a PNG candlestick chart to LLM reviews (for models that take images)")

    # --- optimisation -----------------------------------------------------------------------
    OPTIMIZER_JOBS: int = _s(2, "worker processes for the parameter optimiser", lo=1, hi=256)

    # ------------------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """HISTORICAL_DATA_PATH resolved against the project folder."""
        p = Path(self.HISTORICAL_DATA_PATH).expanduser()
        return p if p.is_absolute() else PROJECT_ROOT / p

    @property
    def log_path(self) -> Path:
        """LOG_FILE resolved against the project folder."""
        p = Path(self.LOG_FILE).expanduser()
        return p if p.is_absolute() else PROJECT_ROOT / p

    @property
    def has_bybit_keys(self) -> bool:
        """True when both Bybit key and secret are set."""
        return bool(self.BYBIT_API_KEY and self.BYBIT_API_SECRET)

    @property
    def allows_short(self) -> bool:
        """Shorts exist only on linear perpetuals."""
        return self.EXCHANGE_CATEGORY == "linear"

    def secret_values(self) -> list[str]:
        """The non-empty secret values, for the log redaction filter."""
        return [getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata.get("secret") and getattr(self, f.name)]

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some settings changed, validated like `load_settings`."""
        return load_settings(env_file=None, environ={}, _base=self, **changes)

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, value, doc) for every setting, secrets masked; used by README and --help."""
        out = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            shown = ("***" if v else "") if f.metadata.get("secret") else _format(v)
            out.append((f.name, shown, f.metadata.get("doc", "")))
        return out


# ----------------------------------------------------------------------------------------------
# loading and validation

def _format(v: Any) -> str:
    if isinstance(v, tuple):
        return ",".join(str(x) for x in v)
    return str(v)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@functools.cache
def _field_types() -> dict[str, Any]:
    """The settings' types, read once (typing.get_type_hints takes ~0.8 ms: every `replace`,
    e.g. each backtest's, paid it); callers only read it."""
    return typing.get_type_hints(Settings)


def _parse(name: str, raw: Any, typ: Any) -> Any:
    """Turn a raw value (string from env, or Python value from overrides) into the field's type."""
    origin = typing.get_origin(typ)
    try:
        if typ is bool:
            if isinstance(raw, bool):
                return raw
            s = str(raw).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError
        if typ is int:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(str(raw).strip()) if isinstance(raw, str) else int(raw)
        if typ is float:
            if isinstance(raw, bool):
                raise ValueError
            v = float(str(raw).strip()) if isinstance(raw, str) else float(raw)
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueError
            return v
        if origin is tuple:
            (inner, _ellipsis) = typing.get_args(typ)
            items = [x.strip() for x in raw.split(",") if x.strip()] if isinstance(raw, str) else list(raw)
            return tuple(_parse(name, x, inner) for x in items)
        if typ is str:
            return str(raw).strip()
    except (ValueError, TypeError):
        pass
    kind = {bool: "true/false", int: "an integer", float: "a number"}.get(typ, "a comma-separated list"
                                                                         if origin is tuple else str(typ))
    raise ConfigError(f"setting {name}={_safe(name, raw)!s} is not valid: expected {kind}")


def _safe(name: str, raw: Any) -> str:
    f = next((f for f in dataclasses.fields(Settings) if f.name == name), None)
    if f is not None and f.metadata.get("secret"):
        return "'***'"
    return repr(raw)


def _check(settings: Settings) -> None:
    for f in dataclasses.fields(settings):
        v = getattr(settings, f.name)
        m = f.metadata
        values = v if isinstance(v, tuple) else (v,)
        for x in values:
            if m.get("choices") and x not in m["choices"]:
                raise ConfigError(f"setting {f.name}={x!r} is not allowed; allowed: {', '.join(m['choices'])}")
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                if m.get("lo") is not None and x < m["lo"]:
                    raise ConfigError(f"setting {f.name}={x!r} is too small; allowed: >= {m['lo']}")
                if m.get("hi") is not None and x > m["hi"]:
                    raise ConfigError(f"setting {f.name}={x!r} is too large; allowed: <= {m['hi']}")
    if not settings.FALLBACK_SYMBOLS:
        raise ConfigError("setting FALLBACK_SYMBOLS is empty; allowed: one or more symbols like BTCUSDT")
    for sym in settings.FALLBACK_SYMBOLS:
        if not sym.isalnum() or sym.upper() != sym:
            raise ConfigError(f"setting FALLBACK_SYMBOLS has {sym!r}; allowed: upper-case symbols like BTCUSDT")
    if settings.EXCHANGE_CATEGORY == "spot" and settings.LEVERAGE != 1:
        raise ConfigError(f"setting LEVERAGE={settings.LEVERAGE!r} with EXCHANGE_CATEGORY=spot; allowed: 1")
    if settings.STOP_ATR_MULT * settings.MIN_REWARD_RISK > settings.TAKE_PROFIT_ATR_MULT + 1e-12:
        raise ConfigError(
            f"setting TAKE_PROFIT_ATR_MULT={settings.TAKE_PROFIT_ATR_MULT!r} is below STOP_ATR_MULT x MIN_REWARD_RISK "
            f"({settings.STOP_ATR_MULT} x {settings.MIN_REWARD_RISK}); every ATR trade would be vetoed")
    url = settings.BYBIT_BASE_URL
    if url and not (url.startswith("http://") or url.startswith("https://")):
        raise ConfigError(f"setting BYBIT_BASE_URL={url!r} is not a URL; allowed: empty or http(s)://host[:port]")
    ws = settings.BYBIT_WS_URL
    if ws and not (ws.startswith("ws://") or ws.startswith("wss://")):
        raise ConfigError(f"setting BYBIT_WS_URL={ws!r} is not a WebSocket URL; allowed: empty or ws(s)://host[:port]")
    if settings.BYBIT_WS_STALL_SECONDS <= settings.BYBIT_WS_PING_SECONDS:
        raise ConfigError(f"setting BYBIT_WS_STALL_SECONDS={settings.BYBIT_WS_STALL_SECONDS!r} must be above "
                          f"BYBIT_WS_PING_SECONDS ({settings.BYBIT_WS_PING_SECONDS}): a quiet healthy stream "
                          "answers a ping every BYBIT_WS_PING_SECONDS")
    if settings.AUTO_LIVE and not settings.has_bybit_keys:
        # Not an error: AUTO_LIVE only ever acts with keys; the engine reports it. Nothing to do here.
        pass


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, [f.name for f in dataclasses.fields(Settings)], n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def load_settings(env_file: str | os.PathLike | None = ".env", *, environ: Mapping[str, str] | None = None,
                  _base: Settings | None = None, **overrides: Any) -> Settings:
    """Load and validate the settings.

    - `env_file`: a `.env` file (relative paths are taken from the project folder); None skips it.
    - `environ`: the environment to read (default `os.environ`).
    - `overrides`: setting values given in code (tests, CLI flags); secrets cannot be given here.

    Raises `ConfigError` naming the setting, the bad value and what is allowed.
    """
    from dotenv import dotenv_values  # local: keeps `import config` cheap for tools

    names = {f.name: f for f in dataclasses.fields(Settings)}
    types_ = _field_types()
    values: dict[str, Any] = {} if _base is None else {n: getattr(_base, n) for n in names}

    file_values: dict[str, str] = {}
    if env_file is not None:
        path = Path(env_file)
        if not path.is_absolute():
            path = PROJECT_ROOT / path
        if path.exists():
            file_values = {k: v for k, v in dotenv_values(path).items() if v is not None}
            for key in file_values:
                if key not in names:
                    hint = _suggest(key)
                    if hint:
                        raise ConfigError(f"unknown setting {key} in {path}{hint}")
    env = os.environ if environ is None else environ
    for source in (file_values, {k: v for k, v in env.items() if k in names}):
        for key, raw in source.items():
            if key in names:
                values[key] = _parse(key, raw, types_[key])
    for key, raw in overrides.items():
        if key not in names:
            raise ConfigError(f"unknown setting {key}{_suggest(key)}")
        if names[key].metadata.get("secret") and _base is None and raw:
            raise ConfigError(f"setting {key} is a secret: set it in the environment or .env, not in code")
        values[key] = _parse(key, raw, types_[key])
    settings = Settings(**values)
    _check(settings)
    return settings


def settings_table() -> str:
    """Markdown table of every setting with its default and doc (for the README)."""
    rows = ["| setting | default | what it does |", "|---|---|---|"]
    for name, value, doc in Settings().describe():
        rows.append(f"| `{name}` | `{value}` | {doc} |")
    return "\n".join(rows)


def env_example() -> str:
    """The text of `.env.example`: every setting, commented out at its default."""
    lines = ["# Copy to .env and edit. Every setting with its default; secrets (keys, tokens) belong ONLY",
             "# here or in the environment. Lines left commented keep the default.",
             "# Regenerate with: python config.py --env-example > .env.example"]
    for name, value, doc in Settings().describe():
        lines += [f"# {doc}", f"# {name}={value}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python config.py [--env-example]: the settings table or .env.example
    import sys

    print(env_example() if "--env-example" in sys.argv else settings_table(), end="" if "--env-example" in sys.argv else "\n")
