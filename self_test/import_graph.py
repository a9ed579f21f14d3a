"""The bot's import graph, read from the source with `ast` (nothing is imported or run).

Used by the architecture test (the import rules, no circles) and by `docs/architecture.py`,
which draws docs/architecture.svg from it, so the picture and the rules are the code's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"

# The top-level primitives every part may import (errors, atomic writes, logging, domain types,
# the event bus, quick-to-make records); they import no part.
PRIMITIVES = ("bot.errors", "bot.atomic", "bot.log_setup", "bot.types", "bot.events", "bot.records")


@dataclass(frozen=True)
class Edge:
    """`source` imports `target` (both dotted module names) at line `line` of `source`."""

    source: str
    target: str
    line: int
    lazy: bool    # inside a function: runs only when called


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the bot, plus ui.py and config.py at the top."""
    found = {module_name(p, root): p for p in sorted((root / "bot").rglob("*.py"))}
    for top in ("ui.py", "config.py"):
        if (root / top).exists():
            found[top[:-3]] = root / top
    return found


def _resolve(name: str, known: Iterable[str]) -> str | None:
    """The longest known module that `name` is or lies in (`bot.types.Fill` -> `bot.types`)."""
    known = set(known)
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in known:
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def edges(root: Path = ROOT) -> list[Edge]:
    """Every import of one of our modules by another, lazy ones included; imports under
    `if TYPE_CHECKING:` are left out (they never run)."""
    mods = modules(root)
    out: list[Edge] = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]

        def visit(node: ast.AST, lazy: bool, name: str = name, package: str = package) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child):
                    for sub in child.orelse:
                        visit(sub, lazy)
                    continue
                in_def = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:
                        anchor = package.split(".")
                        anchor = anchor[:len(anchor) - (child.level - 1)]
                        base = ".".join([*anchor, base] if base else anchor)
                    targets = [f"{base}.{a.name}" for a in child.names] or [base]
                for t in targets:
                    hit = _resolve(t, mods)
                    # `bot` itself is plumbing (lazy exports), not a part: importing it is no arrow
                    if hit is not None and hit != name and hit != "bot":
                        out.append(Edge(name, hit, child.lineno, lazy))
                visit(child, in_def)

        visit(tree, False)
    return sorted(set(out), key=lambda e: (e.source, e.target, e.line))


def part_of(module: str) -> str:
    """The part a module belongs to: `bot.engine.loop` -> `engine`, `bot.types` -> `types`,
    `ui.py` -> `ui` (the window's entry belongs with bot/ui), `config.py` -> `config`."""
    bits = module.split(".")
    if bits[0] != "bot":
        return bits[0]
    return bits[1] if len(bits) > 1 else "bot"


# The rules the imports keep (docs/architecture.md). Each: (rule, parts it binds, parts those may
# not import). A rule is broken by any import, lazy ones too.
RULES: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
    ("analysis imports nothing of the bot but the domain types",
     frozenset({"analysis"}), frozenset({"*"})),
    ("the primitives (errors, atomic, log_setup, types, events, records) import no part",
     frozenset({"errors", "atomic", "log_setup", "types", "events", "records"}), frozenset({"*"})),
    ("exchange never imports engine, agent or strategies",
     frozenset({"exchange"}), frozenset({"engine", "agent", "strategies"})),
    ("the window never imports the exchange adapters or the journal: it goes through the engine",
     frozenset({"ui"}), frozenset({"exchange", "journal"})),
    ("journal and market never import the engine",
     frozenset({"journal", "market"}), frozenset({"engine"})),
    ("the dashboard reads the engine, the journal and the primitives, nothing else",
     frozenset({"dashboard"}), frozenset({"*"})),
    ("only the programs (cli, the window) start the dashboard: the engine and the parts below never import it",
     frozenset({"engine", "alerts", "safety", "strategies", "agent", "exchange", "journal", "market", "research"}),
     frozenset({"dashboard"})),
)
# What "*" still lets each bound part import.
ALLOWED_UNDER_STAR = {
    "analysis": frozenset({"types"}),
    "errors": frozenset(),
    "atomic": frozenset(),
    "log_setup": frozenset(),
    "types": frozenset({"errors", "records"}),
    "events": frozenset(),
    "records": frozenset(),
    "dashboard": frozenset({"engine", "journal", "types", "events", "errors", "log_setup"}),
}


def breaches(all_edges: Iterable[Edge]) -> list[str]:
    """Every import that breaks one of RULES, as 'rule: source -> target (line N)'."""
    out = []
    for e in all_edges:
        src, dst = part_of(e.source), part_of(e.target)
        if src == dst:
            continue
        for rule, bound, banned in RULES:
            if src not in bound:
                continue
            if ("*" in banned and dst not in ALLOWED_UNDER_STAR[src]) or dst in banned:
                out.append(f"{rule}: {e.source} -> {e.target} (line {e.line})")
    return out


def part_edges(root: Path = ROOT) -> set[tuple[str, str]]:
    """Arrows between parts (packages), self-arrows left out."""
    return {(part_of(e.source), part_of(e.target)) for e in edges(root)
            if part_of(e.source) != part_of(e.target)}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    import sys
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return sorted(found)


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for e in edges(root):
        graph.setdefault(e.source, set()).add(e.target)
    return graph


PARTS_ORDER = ("ui", "cli", "dashboard", "research", "engine", "safety", "alerts", "strategies",
               "agent", "exchange", "journal", "market", "analysis", "config")
PRIMITIVE_PARTS = frozenset({"errors", "atomic", "log_setup", "types", "events", "records"})


def part_dot(root: Path = ROOT) -> str:
    """The parts and their arrows as Graphviz DOT (docs/architecture.dot). Arrows into the
    primitives are left out: every part may use them, and drawing them hides the structure."""
    arrows = sorted((a, b) for a, b in part_edges(root)
                    if b not in PRIMITIVE_PARTS and a not in PRIMITIVE_PARTS and a not in ("__main__", "bot"))
    nodes = sorted({n for pair in arrows for n in pair},
                   key=lambda n: (PARTS_ORDER.index(n) if n in PARTS_ORDER else len(PARTS_ORDER), n))
    lines = ["// Generated by `python docs/architecture.py` from the imports in bot/ (do not edit).",
             "digraph parts {",
             '  graph [rankdir=TB, fontname="Helvetica", nodesep=0.35, ranksep=0.45];',
             '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica"];',
             '  edge [color="#555555", arrowsize=0.7];']
    lines += [f'  "{n}";' for n in nodes]
    entries = [n for n in ("ui", "cli") if n in nodes]   # the programs' entry points, drawn on top
    if entries:
        lines.append("  { rank=min; " + " ".join(f'"{n}";' for n in entries) + " }")
    # cli imports nearly every part: its arrows are drawn light so the others stay readable
    lines += [f'  "{a}" -> "{b}"' + (' [color="#b8b8b8"]' if a == "cli" else "") + ";" for a, b in arrows]
    prims = " | ".join(sorted(PRIMITIVE_PARTS))
    lines += ['  subgraph cluster_primitives {',
              '    label="used by every part"; fontname="Helvetica"; style=dashed;',
              f'    primitives [label="{prims}", fillcolor="#f6f6f6"];',
              "  }", "}"]
    return "\n".join(lines) + "\n"
