"""A desktop-menu entry for the terminal (Linux): `python ui.py --install-launcher`.

The `AI-Trading-Terminal.desktop` in the project folder finds `start.command` next to itself
(`%k`), which only works while it stays in the folder and only with launchers that pass `%k`
(`gio launch` does not; it then falls back to the folder start.command last ran in). Copied into
the applications menu it would look in the wrong place, so the installed entry carries absolute
paths instead. Neither needs a terminal: start.command logs to logs/launcher.log.
"""

from __future__ import annotations

from pathlib import Path

from bot.atomic import atomic_file

__all__ = ["desktop_entry", "install_desktop_entry"]

FILE_NAME = "ai-trading-terminal.desktop"


def _quote(path: Path) -> str:
    """A path quoted for a .desktop Exec line (the spec's double-quote rules)."""
    s = str(path)
    for ch in ("\\", '"', "`", "$"):
        s = s.replace(ch, "\\" + ch)
    return f'"{s}"'


def desktop_entry(project_dir: Path) -> str:
    """The text of a .desktop entry that starts the terminal in `project_dir`."""
    project_dir = project_dir.resolve()
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.0",
        "Name=AI Trading Terminal",
        "GenericName=Crypto trading bot",
        "Comment=Self-learning crypto trading bot: paper trading on Bybit data, live only with your keys and consent",
        f"Exec={_quote(project_dir / 'start.command')}",
        f"Path={project_dir}",
        "Icon=utilities-system-monitor",
        "Terminal=false",
        "Categories=Office;Finance;",
        "StartupNotify=true",
        "",
    ])


def install_desktop_entry(project_dir: Path, apps_dir: Path) -> Path:
    """Write the entry into `apps_dir` (e.g. ~/.local/share/applications) atomically; returns its path."""
    target = apps_dir / FILE_NAME
    with atomic_file(target, mode=0o755) as fh:
        fh.write(desktop_entry(project_dir).encode("utf-8"))
    return target
