"""bot/types.py's enums are their plain strings; the typed parts of the bot pass mypy (settings in
pyproject.toml `[tool.mypy]`), as `make test` checks.

To bring a part under the mypy check, add its path to `MYPY_TARGETS` and make it pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.types import (
    Connection,
    DataSource,
    Mode,
    OrderStatus,
    Position,
    PositionSide,
    Side,
    opposite,
)
from self_test.conftest import ROOT


# -- bot/types.py: the StrEnums -------------------------------------------------------------------
def test_enum_values_are_the_strings_on_disk():
    assert [m.value for m in Side] == ["Buy", "Sell"]
    assert [m.value for m in PositionSide] == ["long", "short"]
    assert [m.value for m in Mode] == ["PAPER", "LIVE", "BACKTEST"]
    assert [m.value for m in DataSource] == ["LIVE", "REPLAY"]
    assert [m.value for m in Connection] == ["Connected", "Polling-REST", "Reconnecting", "Offline-REPLAY"]
    assert [m.value for m in OrderStatus] == ["pending", "sent", "new", "partially_filled", "filled",
                                              "cancelled", "rejected", "failed", "lost"]


def test_an_enum_member_is_its_plain_string():
    s = OrderStatus.PARTIALLY_FILLED
    assert isinstance(s, str) and s == "partially_filled" and "partially_filled" == s
    assert f"{s}|{Side.BUY}|{Mode.LIVE:>6}" == "partially_filled|Buy|  LIVE"
    assert str(Connection.OFFLINE_REPLAY) == "Offline-REPLAY" and "%s" % DataSource.REPLAY == "REPLAY"
    assert {"Buy": 1}[Side.BUY] == 1 and {Side.SELL: 2}["Sell"] == 2      # hashes like the string
    assert json.dumps({"side": PositionSide.SHORT, Mode.PAPER: [OrderStatus.LOST]}) == \
        '{"side": "short", "PAPER": ["lost"]}'
    assert OrderStatus("filled") is OrderStatus.FILLED and Side("Sell") is Side.SELL
    with pytest.raises(ValueError):
        Side("buy")                                                        # Bybit's spelling only


def test_order_status_groups_are_sets_of_states_not_states():
    assert len(list(OrderStatus)) == 9 and "OPEN" not in OrderStatus.__members__
    groups = (OrderStatus.OPEN, OrderStatus.FINAL, OrderStatus.UNRESOLVED)
    assert all(isinstance(g, frozenset) for g in groups)
    assert set().union(*groups) == set(OrderStatus)                        # every state in one group
    assert sum(len(g) for g in groups) == len(OrderStatus)                 # ... and in one only
    assert OrderStatus.OPEN == {OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED}
    assert "filled" in OrderStatus.FINAL and "lost" in OrderStatus.UNRESOLVED and "lost" not in OrderStatus.FINAL


def test_plain_strings_still_work_where_enums_are_expected():
    assert opposite("Buy") is Side.SELL and opposite(Side.SELL) is Side.BUY
    assert Position("BTCUSDT", "short", 1.0, 100.0).direction == -1   # a plain string still reads
    assert Position("BTCUSDT", PositionSide.LONG, 1.0, 100.0).direction == 1


# -- mypy -----------------------------------------------------------------------------------------

# Paths relative to the project folder, files or packages.
MYPY_TARGETS: tuple[str, ...] = (
    "bot/types.py",
    "bot/exchange",
    "bot/journal",
    "bot/engine",
    "bot/dashboard",
)


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    if "No module named mypy" in out.stderr:
        pytest.fail("mypy is not installed: it is pinned in requirements-test.txt (make test installs it)")
    return out


def test_the_typed_parts_pass_mypy():
    missing = [t for t in MYPY_TARGETS if not (ROOT / t).exists()]
    assert not missing, f"MYPY_TARGETS names paths that do not exist: {missing}"
    out = _mypy(*MYPY_TARGETS)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "Success: no issues found" in out.stdout


def test_the_config_catches_what_it_promises(tmp_path: Path):
    """The project's settings are the ones in force: a half-annotated def, an unused ignore, an
    implicit Optional and a wrong enum member each give an error (the check is not vacuous)."""
    bad = tmp_path / "bad_types.py"
    bad.write_text(
        "from bot.types import OrderStatus, Side\n"
        "\n"
        "def half(x: int, y):  # disallow_incomplete_defs\n"
        "    return x\n"
        "\n"
        "def implicit(x: int = None) -> int:  # no_implicit_optional\n"
        "    return 0\n"
        "\n"
        "n: int = 1  # type: ignore[assignment]\n"     # warn_unused_ignores
        "s: Side = OrderStatus.NEW\n"
    )
    # No cache: the project's .mypy_cache stays about the project.
    out = _mypy("--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", "/dev/null", str(bad))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "bad_types.py:3: error: Function is missing a type annotation for one or more parameters" in out.stdout
    assert "bad_types.py:9: error: Unused \"type: ignore\" comment" in out.stdout, out.stdout
    assert 'bad_types.py:6: error: Incompatible default for parameter "x"' in out.stdout, out.stdout
    assert '"OrderStatus", variable has type "Side"' in out.stdout, out.stdout
