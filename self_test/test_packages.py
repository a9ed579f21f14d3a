"""Every package of bot/ says what it is for and exports its public names lazily (PEP 562).

A package's `__init__` runs before any of its submodules, and some submodules are heavy (torch,
pybit, matplotlib) or would close an import circle, so no `__init__` imports a submodule at
import time: `__getattr__` loads each exported name from the module `_EXPORTS` maps it to, and
an `if TYPE_CHECKING:` block names the same imports for type checkers.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types

import pytest

from self_test.import_graph import BOT, ROOT, _is_type_checking, module_name

PACKAGES = sorted(module_name(p.parent / "__init__.py") for p in BOT.rglob("__init__.py"))
HEAVY = ("torch", "pybit", "matplotlib")


def _submodules(pkg: types.ModuleType) -> set[str]:
    path = ROOT.joinpath(*pkg.__name__.split("."))
    return {p.stem for p in path.glob("*.py") if p.stem != "__init__"} | \
        {p.name for p in path.iterdir() if (p / "__init__.py").exists()}


def _type_checking_names(pkg_name: str) -> set[str]:
    path = ROOT.joinpath(*pkg_name.split("."), "__init__.py")
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom):
                    names |= {a.asname or a.name for a in imp.names}
    return names


def test_every_package_is_listed():
    assert {"bot", "bot.market", "bot.analysis", "bot.agent", "bot.strategies", "bot.engine", "bot.safety",
            "bot.exchange", "bot.journal", "bot.alerts", "bot.research", "bot.ui", "bot.cli"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_the_package_says_what_it_is_for(name: str):
    doc = importlib.import_module(name).__doc__ or ""
    assert len(doc.split()) >= 20, f"{name}: the docstring should say what the part is for"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_is_the_submodules_own(name: str):
    pkg = importlib.import_module(name)
    exported = list(pkg.__all__)
    assert len(exported) == len(set(exported)), f"{name}.__all__ names something twice"
    exports = getattr(pkg, "_EXPORTS", None)
    subs = _submodules(pkg)
    for attr in exported:
        value = getattr(pkg, attr)
        if exports is None or exports.get(attr) == attr:            # a submodule, exported as such
            assert attr in subs and value is sys.modules[f"{name}.{attr}"], f"{name}.{attr}"
            continue
        if attr not in exports:                                      # defined in the __init__ itself
            assert getattr(value, "__module__", name) == name, f"{name}.{attr}"
            continue
        source = f"{name}.{exports[attr]}"
        assert value is getattr(importlib.import_module(source), attr), f"{name}.{attr}"
        # the module that defines it, not one that re-imports it
        assert getattr(value, "__module__", source) == source, f"{name}.{attr} is defined in {value.__module__}"
        # importing the submodule of the same name would replace the package attribute
        assert attr not in subs, f"{name}.{attr}: the name is a submodule's; do not export it"
    if exports is not None:
        assert set(exports) <= set(exported), f"{name}: _EXPORTS has names missing from __all__"
    assert set(exported) <= set(dir(pkg))
    assert not hasattr(pkg, "no_such_name_here")


@pytest.mark.parametrize("name", [n for n in PACKAGES if n != "bot.cli"])
def test_type_checkers_see_the_same_names(name: str):
    pkg = importlib.import_module(name)
    here = {a for a in pkg.__all__ if a in vars(pkg) and a not in getattr(pkg, "_EXPORTS", {})
            and not isinstance(vars(pkg)[a], types.ModuleType)}
    assert _type_checking_names(name) == set(pkg.__all__) - here


def test_the_cli_exports_its_command_modules():
    import bot.cli

    assert "paper" in bot.cli.__all__ and "backtest" in bot.cli.__all__
    assert not [n for n in bot.cli.__all__ if n.startswith("_")]


@pytest.mark.parametrize("name", PACKAGES)
def test_importing_the_package_loads_nothing_heavy(name: str):
    code = f"import sys, {name}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip()
    assert out == "", f"`import {name}` imported {out}"
