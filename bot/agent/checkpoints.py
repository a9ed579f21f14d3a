"""What the agent keeps on disk: checkpoints (models/) and experience (training/).

Checkpoints are written to a temporary file and renamed into place, so a crash mid-write never
leaves a half file under a real name; the newest `keep` are kept. Experience is appended as
Parquet part files (one directory per symbol, readable at once with `pd.read_parquet(dir)`),
so a model can be retrained from scratch from what the bot lived through.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bot.atomic import atomic_file
from bot.errors import CheckpointError

__all__ = ["CheckpointStore", "ExperienceLog", "load_experience", "SHIPPED_MODEL", "DEFAULT_MODEL_NAME"]

_NAME = re.compile(r"^dqn-(\d{12})\.pt$")
DEFAULT_MODEL_NAME = "dqn-default.pt"
# the trained default the project ships (`make model`), used when a models folder holds no checkpoint
SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "historical_data" / "models" / DEFAULT_MODEL_NAME


class CheckpointStore:
    """Numbered checkpoint files `dqn-<env steps>.pt` in one folder; with none there, the
    default the folder holds (`dqn-default.pt`), else the one the project ships (`fallback`)."""

    def __init__(self, root: Path, *, keep: int = 3, fallback: Path | None = SHIPPED_MODEL) -> None:
        self.root = Path(root)
        self.keep = max(int(keep), 1)
        self.fallback = fallback

    def checkpoints(self) -> list[Path]:
        """Checkpoints oldest first."""
        if not self.root.exists():
            return []
        return sorted(p for p in self.root.iterdir() if _NAME.match(p.name))

    def latest(self) -> Path | None:
        """The newest numbered checkpoint, else the folder's default, else the shipped default."""
        found = self.checkpoints()
        if found:
            return found[-1]
        for p in (self.root / DEFAULT_MODEL_NAME, self.fallback):
            if p is not None and p.is_file():
                return p
        return None

    def save(self, payload: dict[str, Any], steps: int, *, path: str | Path | None = None) -> Path:
        target = Path(path) if path is not None else self.root / f"dqn-{int(steps):012d}.pt"
        with atomic_file(target) as fh:
            torch.save(payload, fh)
        if path is None:
            for old in self.checkpoints()[:-self.keep]:
                old.unlink(missing_ok=True)
        return target

    def load(self, path: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
        p = Path(path) if path is not None else self.latest()
        if p is None:
            raise CheckpointError(f"no checkpoint in {self.root}; train one with `python -m bot train`")
        if not p.exists():
            raise CheckpointError(f"checkpoint {p} does not exist")
        try:
            payload = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a damaged file
            raise CheckpointError(f"checkpoint {p} is corrupt or not a checkpoint: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != 1:
            raise CheckpointError(f"checkpoint {p} has an unknown format; expected a dqn checkpoint (format 1)")
        return p, payload


class ExperienceLog:
    """Appends transitions (state, action, reward, next_state, done, symbol, time) as Parquet."""

    def __init__(self, root: Path, *, flush_every: int = 256) -> None:
        self.root = Path(root)
        self.flush_every = flush_every
        self.rows: list[dict[str, Any]] = []

    def append(self, state: Any, action: int, reward: float, next_state: Any, done: bool, symbol: str,
               time_ms: int) -> None:
        self.rows.append({"state": np.asarray(state, np.float32).tolist(), "action": int(action),
                          "reward": float(reward), "next_state": np.asarray(next_state, np.float32).tolist(),
                          "done": bool(done), "symbol": symbol or "UNKNOWN", "time_ms": int(time_ms)})
        if len(self.rows) >= self.flush_every:
            self.flush()

    def flush(self) -> list[Path]:
        """Write the pending rows, one part file per symbol (temp file + rename)."""
        written = []
        if not self.rows:
            return written
        df = pd.DataFrame(self.rows)
        for symbol, part in df.groupby("symbol"):
            folder = self.root / str(symbol)
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{int(part['time_ms'].iloc[0]):013d}-{uuid.uuid4().hex[:8]}.parquet"
            with atomic_file(folder / name) as fh:
                part.reset_index(drop=True).to_parquet(fh, index=False)
            written.append(folder / name)
        self.rows = []
        return written


def load_experience(root: Path, symbol: str | None = None) -> pd.DataFrame:
    """All recorded transitions (of one symbol, or all), oldest first."""
    root = Path(root)
    folders = [root / symbol] if symbol else sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []
    parts = [pd.read_parquet(f) for d in folders if d.exists() for f in sorted(d.glob("part-*.parquet"))]
    if not parts:
        return pd.DataFrame(columns=["state", "action", "reward", "next_state", "done", "symbol", "time_ms"])
    return pd.concat(parts, ignore_index=True).sort_values("time_ms", kind="stable").reset_index(drop=True)
