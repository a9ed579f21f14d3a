"""Configure a widget only when an option really changes.

Every Tcl call from Python releases and retakes the GIL; while the engine thread is busy, each
retake can wait a whole switch interval. So the window's update path makes as few Tcl calls as
it can: repainting a label with the text it already shows costs nothing here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigCache"]


class ConfigCache:
    def __init__(self) -> None:
        self._seen: dict[str, dict[str, Any]] = {}

    def set(self, widget: Any, **options: Any) -> bool:
        """`widget.configure(**options)` for the options that differ from last time; True if any did."""
        seen = self._seen.setdefault(str(widget), {})
        changed = {k: v for k, v in options.items() if seen.get(k, _MISSING) != v}
        if not changed:
            return False
        widget.configure(**changed)
        seen.update(changed)
        return True

    def set_var(self, var: Any, value: Any) -> bool:
        """`var.set(value)` only when it differs from what this cache last set."""
        seen = self._seen.setdefault(str(var), {})
        if seen.get("value", _MISSING) == value:
            return False
        var.set(value)
        seen["value"] = value
        return True

    def forget(self, widget: Any) -> None:
        """Someone else changed `widget` (e.g. the user): the next `set` must configure it."""
        self._seen.pop(str(widget), None)


_MISSING = object()
