"""The launcher works when double-clicked (issue 18, item 5): `gio launch` (what GNOME-style file
managers and menus use) from another working directory, no terminal emulator, finds the window.

The project is a copy of the launchers next to the real code (symlinks), with a `.venv/bin/python`
that runs this test's interpreter and notes its pid (so the test ends only what it started).
Needs gio (Debian: libglib2.0-bin), xdotool and an X display.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gui,
              pytest.mark.skipif(shutil.which("gio") is None or shutil.which("xdotool") is None,
                                 reason="needs gio (libglib2.0-bin) and xdotool")]

ROOT = Path(__file__).resolve().parents[2]
TITLE = "AI Trading Terminal"


def project_copy(tmp_path: Path, ui_py: str | None = None) -> Path:
    project = tmp_path / "My Terminal"    # a space, as on real desktops
    (project / ".venv" / "bin").mkdir(parents=True)
    for name in ("start.command", "AI-Trading-Terminal.desktop", "requirements.txt"):
        shutil.copy2(ROOT / name, project / name)
    for name in ("bot", "config.py"):
        (project / name).symlink_to(ROOT / name)
    if ui_py is None:
        shutil.copy2(ROOT / "ui.py", project / "ui.py")   # a copy: ui.py --install-launcher resolves its own path
    else:
        (project / "ui.py").write_text(ui_py)
    python = project / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho $$ >> "{project}/pids.txt"\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    time.sleep(0.01)
    (project / ".venv" / ".runtime").touch()
    return project


def launch_env(tmp_path: Path, display: str) -> dict[str, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BYBIT_", "TELEGRAM_", "XDG_", "GIO_", "HISTORICAL", "LOG_"))}
    env.update(DISPLAY=display, HOME=str(tmp_path / "home"), BYBIT_BASE_URL=f"http://127.0.0.1:{port}",
               HISTORICAL_DATA_PATH=str(tmp_path / "data"), LOG_FILE=str(tmp_path / "bot.log"))
    return env


def windows_named(env: dict[str, str], name: str) -> list[str]:
    out = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", f"^{name}$"], capture_output=True,
                         text=True, timeout=20, env=env)
    return out.stdout.split()


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def end_started(project: Path) -> None:
    """End the processes this launch started (their pids, noted by the .venv python)."""
    pids = project / "pids.txt"
    for line in pids.read_text().split() if pids.exists() else ():
        try:
            os.kill(int(line), signal.SIGTERM)
        except ProcessLookupError:
            pass
    pids.unlink(missing_ok=True)


def test_gio_launch_from_another_folder_opens_the_window_without_a_terminal(display: str, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    env = launch_env(tmp_path, display)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert not windows_named(env, TITLE)

    # The menu entry `ui.py --install-launcher` writes (absolute paths, Terminal=false), via gio.
    out = subprocess.run([sys.executable, str(project / "ui.py"), "--install-launcher"], capture_output=True,
                         text=True, timeout=120, env=env, cwd=elsewhere)
    assert out.returncode == 0, out.stderr
    installed = tmp_path / "home" / ".local" / "share" / "applications" / "ai-trading-terminal.desktop"
    assert "Terminal=false" in installed.read_text()
    try:
        subprocess.run(["gio", "launch", str(installed)], check=True, timeout=30, env=env, cwd=elsewhere)
        wait_for(lambda: windows_named(env, TITLE), 90, "the window from the installed launcher")
    finally:
        end_started(project)
    wait_for(lambda: not windows_named(env, TITLE), 30, "the window to go")
    log = (project / "logs" / "launcher.log").read_text()
    assert f"start.command in {project}" in log      # no terminal: its output went to the log file

    # The launcher in the project folder, through gio (which passes no %k): it finds the folder
    # start.command last ran in.
    try:
        subprocess.run(["gio", "launch", str(project / "AI-Trading-Terminal.desktop")], check=True, timeout=30,
                       env=env, cwd=elsewhere)
        wait_for(lambda: windows_named(env, TITLE), 90, "the window from the project folder's launcher")
    finally:
        end_started(project)
    wait_for(lambda: not windows_named(env, TITLE), 30, "the window to go")
    assert (project / "logs" / "launcher.log").read_text().count("start.command in") == 2


def test_a_failing_start_shows_an_error_box_and_logs_it(display: str, tmp_path: Path) -> None:
    project = project_copy(tmp_path / "broken", ui_py="raise SystemExit(5)\n")
    env = launch_env(tmp_path, display)
    try:
        subprocess.run(["gio", "launch", str(project / "AI-Trading-Terminal.desktop")], check=True, timeout=30,
                       env=env, cwd=project)   # (no remembered folder here: it is found in the cwd)
        wait_for(lambda: windows_named(env, TITLE), 60, "the error box")
        log = (project / "logs" / "launcher.log").read_text()
        assert "ui.py exited with 5" in log
    finally:
        end_started(project)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_says_first_run_installing_before_pip_starts(tmp_path: Path) -> None:
    """On a fresh clone (no .venv) `make run` says it will take minutes before pip prints anything
    (a dry run: the commands in order, nothing installed)."""
    for name in ("Makefile", "requirements.txt", "requirements-test.txt", "requirements-bench.txt"):
        shutil.copy2(ROOT / name, tmp_path / name)
    out = subprocess.run(["make", "-n", "--no-print-directory", "run"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, env={**os.environ, "DISPLAY": ":0"})
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "first run: installing, a few minutes" in text
    assert text.index("first run: installing, a few minutes") < text.index("pip install")
