"""What the window remembers between runs: geometry, the selected pair and the chart tab.

Kept in `settings.data_dir / "ui_prefs.json"`, written atomically (temp file + os.replace), so a
crash while saving leaves the previous file whole. A damaged file is set aside and defaults used:
remembering a window size is never worth refusing to start.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bot.atomic import atomic_write_json

__all__ = ["UiPrefs", "load_prefs", "save_prefs", "prefs_path"]

log = logging.getLogger(__name__)

# Tk geometry: WIDTHxHEIGHT+X+Y (X and Y may be negative on multi-monitor setups).
_GEOMETRY = re.compile(r"^\d{2,5}x\d{2,5}([+-]-?\d{1,5}[+-]-?\d{1,5})?$")
TABS = ("Price", "Equity", "P&L", "Training", "Lessons")


@dataclass(frozen=True)
class UiPrefs:
    """Remembered window state."""

    geometry: str = "1440x900"
    pair: str = ""
    tab: str = "Price"

    def with_changes(self, **changes: Any) -> "UiPrefs":
        return replace(self, **changes)


def prefs_path(settings: Any) -> Path:
    """Where the prefs live for these settings."""
    return Path(settings.data_dir) / "ui_prefs.json"


def _clean(raw: dict[str, Any]) -> UiPrefs:
    out = UiPrefs()
    geometry = raw.get("geometry")
    if isinstance(geometry, str) and _GEOMETRY.match(geometry):
        out = out.with_changes(geometry=geometry)
    pair = raw.get("pair")
    if isinstance(pair, str) and pair.isalnum() and pair.upper() == pair and len(pair) <= 30:
        out = out.with_changes(pair=pair)
    tab = raw.get("tab")
    if tab in TABS:
        out = out.with_changes(tab=tab)
    return out


def load_prefs(path: Path) -> UiPrefs:
    """The saved prefs, or defaults when there are none or the file is damaged."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return UiPrefs()
    except OSError as exc:
        log.warning("could not read window preferences %s (%s); using defaults", path, exc)
        return UiPrefs()
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        bad = path.with_suffix(".json.bad")
        try:
            os.replace(path, bad)
        except OSError:
            pass
        log.warning("window preferences %s are damaged (%s); kept as %s, using defaults", path, exc, bad)
        return UiPrefs()
    return _clean(raw)


def save_prefs(path: Path, prefs: UiPrefs) -> None:
    """Write the prefs atomically: a reader sees the old file or the new one, never half of one."""
    atomic_write_json(path, asdict(prefs))
