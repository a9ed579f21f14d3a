"""What the window shows before Start: the record of the wallet it will trade.

Paper: the saved paper wallet (paper_wallet.json, or replay_wallet.json when the last paper
session replayed recorded candles) and its journal (state.db / replay_state.db): balance, open
positions, closed trades and the equity curve in candle time. Live: the Bybit balance and
positions, and the live part of state.db. Read-only: nothing is created or claimed by looking.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.types import ClosedTrade, Mode, Position

if TYPE_CHECKING:
    from config import Settings

__all__ = ["PastRecord", "read_past", "last_paper_source_was_replay", "read_learner_curve", "latest_checkpoint",
           "LEARNER_CURVE_FILE"]

log = logging.getLogger("bot.engine.past")

LEARNER_CURVE_FILE = "learner_curve.json"   # next to the agent's checkpoints (models/)
PAPER_FILES = ("state.db", "paper_wallet.json")
REPLAY_FILES = ("replay_state.db", "replay_wallet.json")


@dataclass(frozen=True)
class PastRecord:
    """The wallet a session would trade and what its journal holds, for the window before Start."""

    mode: str                                        # PAPER | LIVE
    replay: bool                                     # the replay record (recorded candles), not the paper one
    where: str                                       # in words: which record this is
    equity: float
    balance: float
    positions: tuple[Position, ...] = ()
    unclosed: tuple[str, ...] = ()                   # symbols a close could not get out of (shown in red)
    trades: tuple[ClosedTrade, ...] = ()
    equity_points: tuple[tuple[int, float, float], ...] = ()   # (candle close ms, equity, balance)


def read_learner_curve(settings: Settings) -> list[tuple[float, float, float, float]]:
    """The agent's (steps, loss, reward, epsilon) curve saved with its last checkpoint; [] when none
    (or unreadable: the curve is a picture, never a reason to refuse to start)."""
    import json
    import math

    path = Path(settings.data_dir) / "models" / LEARNER_CURVE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        points = [tuple(float(x) if x is not None else math.nan for x in p) for p in raw if len(p) == 4]
    except (OSError, ValueError, TypeError) as exc:
        if path.exists():
            log.warning("learner curve %s unreadable (%s); the Training tab starts empty", path, exc)
        return []
    return points  # type: ignore[return-value]


def latest_checkpoint(settings: Settings) -> str:
    """The file name of the checkpoint the agent will resume from ("" when none)."""
    import re

    folder = Path(settings.data_dir) / "models"
    names = sorted(p.name for p in folder.glob("dqn-*.pt") if re.fullmatch(r"dqn-\d{12}\.pt", p.name)) \
        if folder.exists() else []
    return names[-1] if names else ""


def _newest_mtime(data_dir: Path, names: tuple[str, ...]) -> float:
    times = [p.stat().st_mtime for n in names for p in (data_dir / n, data_dir / f"{n}-wal") if p.exists()]
    return max(times, default=0.0)


def last_paper_source_was_replay(settings: Settings) -> bool:
    """Did the last paper session replay recorded candles? (Its record was written last.)"""
    data_dir = Path(settings.data_dir)
    return _newest_mtime(data_dir, REPLAY_FILES) > _newest_mtime(data_dir, PAPER_FILES)


def _journal_part(settings: Settings, name: str, mode: Mode) -> tuple[tuple[ClosedTrade, ...],
                                                                       tuple[tuple[int, float, float], ...],
                                                                       tuple[str, ...]]:
    """The closed trades, the equity points and the unclosed symbols the journal `name` holds."""
    if not (Path(settings.data_dir) / name).exists():
        return (), (), ()
    from bot.engine.engine_state import unclosed_in
    from bot.journal.store import Journal

    journal = Journal(Path(settings.data_dir) / name)
    try:
        return (tuple(journal.closed_trades(mode=mode)), tuple(journal.equity_history(mode)),
                tuple(sorted(unclosed_in(journal))))
    finally:
        journal.close()


def read_past(settings: Settings, mode: str, *, replay: bool | None = None) -> PastRecord:
    """The record of `mode` ("PAPER" or "LIVE"). `replay` (paper only): the replay record; None:
    whichever paper record was written last. LIVE asks Bybit: call it off the Tk thread."""
    mode = mode.upper()
    if mode == "LIVE":
        from bot.exchange.bybit import BybitExchange

        ex = BybitExchange.from_settings(settings)
        bal = ex.get_balance()
        positions = tuple(p for p in ex.get_positions() if p.size > 0)
        trades, points, unclosed = _journal_part(settings, "state.db", Mode.LIVE)
        return PastRecord(mode="LIVE", replay=False, where="your Bybit account", equity=bal.equity,
                          balance=bal.wallet_balance, positions=positions, unclosed=unclosed, trades=trades,
                          equity_points=points)
    if replay is None:
        replay = last_paper_source_was_replay(settings)
    journal_name, wallet_name = REPLAY_FILES if replay else PAPER_FILES
    from bot.exchange.sim import SimExchange

    wallet = SimExchange(settings, state_path=Path(settings.data_dir) / wallet_name, claim=False)
    bal = wallet.get_balance()
    positions = tuple(p for p in wallet.get_positions() if p.size > 0)
    trades, points, unclosed = _journal_part(settings, journal_name, Mode.PAPER)
    where = "the replay paper wallet (recorded candles)" if replay else "the paper wallet"
    return PastRecord(mode="PAPER", replay=replay, where=where, equity=bal.equity, balance=bal.wallet_balance,
                      positions=positions, unclosed=unclosed, trades=trades, equity_points=points)
