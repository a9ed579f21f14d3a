@echo off
rem AI Trading Terminal launcher for Windows: double-click it.
rem Same as `make run`: creates .venv and installs requirements.txt on first use, then opens the window.
cd /d "%~dp0"
if not exist ".venv\Scripts\python.exe" (
  echo Setting up the Python environment in .venv ^(first run: a few minutes^) ...
  py -3.11 -m venv .venv 2>nul || python -m venv .venv || goto :error
)
if not exist ".venv\.runtime" (
  ".venv\Scripts\python.exe" -m pip install --upgrade pip || goto :error
  ".venv\Scripts\python.exe" -m pip install -r requirements.txt || goto :error
  type nul > ".venv\.runtime"
)
start "" ".venv\Scripts\pythonw.exe" ui.py
exit /b 0
:error
echo.
echo Could not set up Python for the terminal. Install Python 3.11 from python.org
echo (tick "Add python.exe to PATH"), then double-click start.bat again.
pause
exit /b 1
