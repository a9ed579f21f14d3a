"""The import rules of docs/architecture.md hold in the code, and the picture there is the code's.

The graph is read with `ast` (self_test/import_graph.py), lazy imports inside functions
included, so a rule cannot be dodged by importing inside a function.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from self_test.import_graph import ROOT, breaches, cycles, edges, module_graph, part_dot, part_edges


def test_no_module_imports_itself_back():
    assert cycles(module_graph()) == []


def test_the_parts_form_no_circle():
    graph: dict[str, set[str]] = {}
    for a, b in part_edges():
        graph.setdefault(a, set()).add(b)
    assert cycles(graph) == []


def test_the_import_rules_hold():
    assert breaches(edges()) == []


def test_a_breach_is_caught(tmp_path: Path):
    """The checker on a small tree that breaks each rule once (lazily, too) names every breach."""
    files = {
        "bot/__init__.py": "",
        "bot/types.py": "from bot.errors import X\n",
        "bot/errors.py": "",
        "bot/analysis/__init__.py": "",
        "bot/analysis/ind.py": "def f():\n    from bot.market.feed import g\n",
        "bot/market/__init__.py": "",
        "bot/market/feed.py": "from bot.engine import loop\n",
        "bot/engine/__init__.py": "",
        "bot/engine/loop.py": "from bot.types import Fill\nfrom bot.journal.store import J\n",
        "bot/journal/__init__.py": "",
        "bot/journal/store.py": "import bot.types\n",
        "bot/exchange/__init__.py": "",
        "bot/exchange/bybit.py": "from ..strategies import dqn\n",
        "bot/strategies/__init__.py": "",
        "bot/strategies/dqn.py": "from bot.exchange.bybit import B\n",
        "bot/ui/__init__.py": "",
        "bot/ui/panel.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.journal import store\n",
        "ui.py": "from bot.exchange import bybit\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    found = breaches(edges(tmp_path))
    joined = "\n".join(found)
    assert "bot.analysis.ind -> bot.market.feed" in joined          # lazy import, still a breach
    assert "bot.market.feed -> bot.engine" in joined
    assert "bot.exchange.bybit -> bot.strategies.dqn" in joined     # relative import resolved
    assert "ui -> bot.exchange.bybit" in joined
    sources = {b.split(": ", 1)[1].split(" -> ")[0] for b in found}
    assert "bot.ui.panel" not in sources                             # TYPE_CHECKING never runs
    assert "bot.engine.loop" not in sources                          # the engine may use the journal
    assert len(found) == 4
    assert cycles(module_graph(tmp_path)) == [["bot.exchange.bybit", "bot.strategies.dqn"]]


def test_the_docs_picture_is_drawn_from_the_code():
    dot = ROOT / "docs" / "architecture.dot"
    assert dot.read_text() == part_dot(), "the parts changed: run `python docs/architecture.py`"
    svg = (ROOT / "docs" / "architecture.svg").read_text()
    for a, b in (("engine", "exchange"), ("research", "engine"), ("strategies", "agent")):
        assert f"{a}&#45;&gt;{b}" in svg, f"docs/architecture.svg lacks {a} -> {b}: re-run docs/architecture.py"
