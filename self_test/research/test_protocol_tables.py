"""The README's and docs/agent.md's agent tables are the research record's (docs/research/research.json),
as bench/agent_table.py writes them: published numbers cannot drift from the run that made them."""

from __future__ import annotations

import importlib.util
import json

from self_test.conftest import ROOT


def _agent_table():
    spec = importlib.util.spec_from_file_location("agent_table", ROOT / "bench" / "agent_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_published_agent_tables_equal_the_research_record():
    mod = _agent_table()
    text = mod.render()
    for path in mod.TARGETS:
        block = mod.BLOCK.search(path.read_text())
        assert block is not None, f"{path.name} lacks the agent-tables block"
        assert block.group(2) == text, f"{path.name}: run `python bench/agent_table.py`"


def test_the_record_holds_eight_seeds_three_folds_and_every_shipped_set():
    rec = json.loads((ROOT / "docs" / "research" / "research.json").read_text())
    assert rec["settings"]["seeds"] >= 8 and rec["settings"]["folds"] == 3
    assert set(rec["datasets"]) == {"BTCUSDT 1h", "BTCUSDT daily", "ETHUSDT daily", "LTCUSDT daily"}
    for ds in rec["datasets"].values():
        for name in ("buy_and_hold", "sma_cross", rec["default"]):
            assert name in ds["results"]
    assert "analyst" in rec["datasets"]["BTCUSDT 1h"]["results"]
    assert rec["default"] in rec["settings"]["servable_default_candidates"]
