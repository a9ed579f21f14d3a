"""One module per `python -m bot` command. bot/__main__.py finds them with pkgutil (each defines
COMMAND, HELP, `add_arguments(parser)` and `run(args, settings)`), so adding a command touches
no other file.

The commands are the top of the import graph: they may import every part, and no part imports
them. `__all__` lists the command modules (read from this folder), each imported on first use
(PEP 562), so `import bot.cli` imports none of them.
"""

from __future__ import annotations

import pkgutil

from bot import lazy_exports

__all__ = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


__getattr__, __dir__ = lazy_exports(__name__, {name: name for name in __all__})
