"""Dashboard: the bot in a browser (FastAPI + uvicorn), on the engine's own snapshot, journal and
event bus through `bot.engine.remote.RemoteControl`: equity against buy-and-hold, positions,
trades, the event log, the promotion gate and the connection, updated live (server-sent events).
Read-only unless DASHBOARD_ALLOW_CONTROL; loopback unless DASHBOARD_TOKEN (docs/dashboard.md).

It may import the engine, the journal and the primitives; the engine never imports it (the CLI
and the window start it). Names load on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.dashboard.auth import TokenCheck, check_bind
    from bot.dashboard.server import DashboardServer, create_app, start_dashboard

__all__ = [
    "DashboardServer", "create_app", "start_dashboard", "TokenCheck", "check_bind",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "DashboardServer": "server", "create_app": "server", "start_dashboard": "server",
    "TokenCheck": "auth", "check_bind": "auth",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
