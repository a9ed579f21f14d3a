#!/usr/bin/env bash
# AI Trading Terminal launcher. macOS: double-click this file in Finder. Linux: the
# AI-Trading-Terminal.desktop launcher runs it (or run ./start.command in a terminal).
# Same as `make run`: creates .venv and installs requirements.txt on first use, then opens the window.
# Double-clicked (no terminal): everything it prints goes to logs/launcher.log, and a failure is
# shown in an error box.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE" || exit 1
mkdir -p logs
LOG="$HERE/logs/launcher.log"
if [ ! -t 1 ]; then
  exec >>"$LOG" 2>&1
fi
echo "== $(date -u '+%Y-%m-%d %H:%M:%S') UTC start.command in $HERE"
# Remembered for AI-Trading-Terminal.desktop: some launchers (gio launch) do not say where it is.
REMEMBER="${XDG_DATA_HOME:-$HOME/.local/share}/ai-trading-terminal"
mkdir -p "$REMEMBER" 2>/dev/null && printf '%s\n' "$HERE" > "$REMEMBER/project-dir" 2>/dev/null

error_box() {  # a Tk error box from any python3 with tkinter, else xmessage, else only the log
  local text="$1"
  [ -t 1 ] && return 0
  for py in .venv/bin/python python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" - "$text" "$LOG" <<'PY' 2>/dev/null; then return 0; fi
import sys, tkinter as tk
from tkinter import messagebox
root = tk.Tk(); root.withdraw()
messagebox.showerror("AI Trading Terminal", f"{sys.argv[1]}\n\nDetails: {sys.argv[2]}")
PY
  done
  command -v xmessage >/dev/null 2>&1 && xmessage -center "AI Trading Terminal: $text (details: $LOG)"
}

if [ ! -x .venv/bin/python ] || [ ! -f .venv/.runtime ] || [ requirements.txt -nt .venv/.runtime ]; then
  echo "first run: installing, a few minutes (Python packages into .venv) ..."
  if command -v make >/dev/null 2>&1; then
    make .venv/.runtime || { error_box "Setting up Python in .venv failed."; exit 1; }
  else
    PY="$(command -v python3.11 || command -v python3)"
    { [ -x .venv/bin/python ] || "$PY" -m venv .venv; } &&
      .venv/bin/pip install --upgrade pip && .venv/bin/pip install -r requirements.txt && touch .venv/.runtime ||
      { error_box "Setting up Python in .venv failed (is Python 3.11 installed?)."; exit 1; }
  fi
fi
.venv/bin/python ui.py "$@"
rc=$?
echo "== ui.py exited with $rc"
# 2: ui.py already said what is wrong (settings error box, or no display to show one on);
# 128 and up: ended by a signal (the user or the system stopped it), not a failure to show
if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && [ "$rc" -lt 128 ]; then
  error_box "The terminal stopped with an error (exit code $rc)."
fi
exit "$rc"
