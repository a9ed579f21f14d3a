"""The desktop window (Tkinter): widgets per panel, a controller over the engine's snapshot and
events, and the threads that keep the Tk thread free (commands, snapshots, charts). `ui.py` at the
project root starts it; docs/ui.md describes it.

Import rule (docs/architecture.md): the window never imports the exchange adapters or the journal;
it goes through the engine (bot/engine/records.py for what it reads before Start), which it
imports only when it builds one, on the command thread. Names load on first use (PEP 562), so
`import bot.ui` imports neither Tk nor matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.ui.app import TITLE, build_app
    from bot.ui.launcher import install_desktop_entry

__all__ = [
    "build_app", "TITLE", "install_desktop_entry",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "build_app": "app", "TITLE": "app", "install_desktop_entry": "launcher",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
