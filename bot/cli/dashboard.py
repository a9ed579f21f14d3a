"""The web dashboard over a paper bot: `python -m bot dashboard` runs the paper engine (as
`python -m bot paper`, in this process) with the dashboard on it, and prints where to open it.

Safe by default: it binds 127.0.0.1 (DASHBOARD_HOST); any other address needs DASHBOARD_TOKEN
(at least 24 random characters), else it refuses to start. It is read-only unless
DASHBOARD_ALLOW_CONTROL=true (then pause, resume and close-all). It never trades real money: for
a dashboard on live trading set DASHBOARD_ENABLED=true and run `python -m bot live`. From a phone:
an SSH tunnel, or a reverse proxy with TLS (docs/dashboard.md).

Exit codes: 0 stopped normally, 1 failed, 2 bad usage or settings (e.g. no token off loopback).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bot.cli import paper

if TYPE_CHECKING:
    from config import Settings

COMMAND = "dashboard"
HELP = "the web dashboard over a paper bot (http://127.0.0.1:8765; read-only unless DASHBOARD_ALLOW_CONTROL)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=None, help="address to bind (default: DASHBOARD_HOST, 127.0.0.1); anything "
                                                 "but loopback needs DASHBOARD_TOKEN")
    p.add_argument("--port", type=int, default=None, help="port (default: DASHBOARD_PORT, 8765)")
    paper.add_arguments(p)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import sys

    from bot.dashboard.auth import check_bind
    from bot.errors import ConfigError

    changes: dict[str, object] = {"DASHBOARD_ENABLED": True}
    if args.host:
        changes["DASHBOARD_HOST"] = args.host
    if args.port is not None:
        changes["DASHBOARD_PORT"] = args.port
    try:
        s = settings.replace(**changes)
        check_bind(s.DASHBOARD_HOST, s.DASHBOARD_TOKEN)
    except ConfigError as exc:
        print(f"dashboard: {exc}", file=sys.stderr)
        return paper.EXIT_USAGE
    host = f"[{s.DASHBOARD_HOST}]" if ":" in s.DASHBOARD_HOST else s.DASHBOARD_HOST
    print(f"dashboard: http://{host}:{s.DASHBOARD_PORT}/ ({'pause/resume/close-all allowed' if s.DASHBOARD_ALLOW_CONTROL else 'read-only'}); "
          "Ctrl-C stops the bot and the dashboard", flush=True)
    return paper.run_engine(args, s, mode="PAPER")
