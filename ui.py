"""AI Trading Terminal: the desktop window. Double-click a launcher, or run `make run`.

Thin on purpose: load the settings, set up logging, build the window (bot/ui/), run Tk's loop.
The engine starts in paper trading; live needs keys in .env and a confirmation in the window.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="ui.py", description="Open the AI Trading Terminal window "
                                     "(paper trading by default; live needs keys in .env and your consent).")
    parser.add_argument("--check", action="store_true",
                        help="load the settings and the window's modules, print 'ok' and exit (no window)")
    parser.add_argument("--install-launcher", action="store_true",
                        help="Linux: add 'AI Trading Terminal' to the applications menu "
                             "(~/.local/share/applications) and exit")
    args = parser.parse_args(argv)
    if args.install_launcher:
        from pathlib import Path

        from bot.ui.launcher import install_desktop_entry

        target = install_desktop_entry(Path(__file__).resolve().parent,
                                       Path.home() / ".local" / "share" / "applications")
        print(f"installed {target}")
        return 0
    from bot.errors import ConfigError
    from bot.log_setup import setup_logging
    from config import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        # A double-clicked window has no terminal: say it in a dialog too.
        print(f"settings error: {exc}", file=sys.stderr)
        try:
            import tkinter as tk
            from tkinter import messagebox
            root = tk.Tk()
            root.withdraw()
            messagebox.showerror("AI Trading Terminal: settings error", str(exc))
            root.destroy()
        except Exception:
            pass
        return 2
    setup_logging(log_file=settings.log_path, level=settings.LOG_LEVEL, secrets=settings.secret_values(),
                  max_bytes=settings.LOG_MAX_BYTES, backup_count=settings.LOG_BACKUP_COUNT)
    from bot.ui import build_app

    if args.check:
        print(f"ok: settings loaded, window modules import (data in {settings.data_dir})")
        return 0
    import tkinter as tk

    try:
        controller = build_app(settings)
    except tk.TclError as exc:  # no X display / desktop session: say what to do instead of a traceback
        print(f"cannot open the window: {exc}\nOn a machine without a desktop, run the bot headless: "
              "`make paper` or `.venv/bin/python -m bot paper`.", file=sys.stderr)
        return 2
    controller.root.mainloop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
