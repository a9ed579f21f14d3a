"""The desktop window (Tkinter): widgets per panel, a controller over the engine's snapshot and
events, and the chart thread. `ui.py` at the project root starts it; docs/ui.md describes it."""

from bot.ui.app import TITLE, build_app

__all__ = ["build_app", "TITLE"]
