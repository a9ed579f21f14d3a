"""One module per `python -m bot` command. bot/__main__.py finds them with pkgutil (each defines
COMMAND, HELP, `add_arguments(parser)` and `run(args, settings)`), so adding a command touches
no other file.

The commands are the top of the import graph: they may import every part, and no part imports
them. `__all__` lists the command modules (read from this folder), each imported on first use
(PEP 562), so `import bot.cli` imports none of them.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

__all__ = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
