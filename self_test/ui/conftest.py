"""Window-test fixtures: one virtual X display for the whole run, and windows that always close."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from self_test.xserver import VirtualDisplay


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """An X display: our own Xvfb when installed, else the session's display, else skip.

    Session-scoped: Tk keeps its connection to a display after its windows are gone, and Xlib
    ends the process when that server goes away, so no Xvfb may stop before the last test."""
    old = os.environ.get("DISPLAY")
    if shutil.which("Xvfb"):
        with VirtualDisplay(1440, 900) as vd:
            os.environ["DISPLAY"] = vd.display
            try:
                yield vd.display
            finally:
                if old is None:
                    os.environ.pop("DISPLAY", None)
                else:
                    os.environ["DISPLAY"] = old
    elif old:
        yield old
    else:
        pytest.skip("window tests need an X display: none is set and Xvfb is not installed "
                    "(Debian/Ubuntu: apt-get install xvfb x11-apps xdotool)")


@pytest.fixture
def open_window(display: str) -> Iterator[Callable[..., object]]:
    """`open_window(settings, ...)` builds the window; whatever happens in the test, every window
    is closed and its engine stopped (positions closed) at the end."""
    from bot.ui import build_app

    made = []

    def make(settings, **kwargs):
        ctl = build_app(settings, **kwargs)
        made.append(ctl)
        return ctl

    yield make
    for ctl in made:
        if ctl._destroyed:
            continue
        if ctl.app is not None:
            ctl.app.shutdown(close_positions=True, timeout=30)
        ctl._destroy()


