#!/usr/bin/env bash
# AI Trading Terminal launcher. macOS: double-click this file in Finder. Linux: the
# AI-Trading-Terminal.desktop launcher runs it (or run ./start.command).
# Same as `make run`: creates .venv and installs requirements.txt on first use, then opens the window.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.runtime ] || [ requirements.txt -nt .venv/.runtime ]; then
  echo "Setting up the Python environment in .venv (first run: a few minutes) ..."
  if command -v make >/dev/null 2>&1; then
    make .venv/.runtime
  else
    PY="$(command -v python3.11 || command -v python3)"
    [ -x .venv/bin/python ] || "$PY" -m venv .venv
    .venv/bin/pip install --upgrade pip
    .venv/bin/pip install -r requirements.txt
    touch .venv/.runtime
  fi
fi
exec .venv/bin/python ui.py "$@"
