"""Write the agent's research tables into README.md and docs/agent.md from the research record
(docs/research/research.json, made by `python -m bot research --seeds 8 --folds 3 --out docs/research`),
between the `<!-- agent-tables -->` markers, so the published numbers are the record's and cannot
drift from it (self_test/research/test_protocol_tables.py checks they match).

Usage:  .venv/bin/python bench/agent_table.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECORD = ROOT / "docs" / "research" / "research.json"
COMMAND = "python -m bot research --seeds 8 --folds 3 --out docs/research"
TARGETS = (ROOT / "README.md", ROOT / "docs" / "agent.md")
BLOCK = re.compile(r"(<!-- agent-tables:start -->\n)(.*?)(<!-- agent-tables:end -->)", re.S)


def render(record_path: Path = RECORD) -> str:
    from bot.research.protocol_report import from_json

    record = json.loads(record_path.read_text())
    rep = from_json(record)
    later = [r["command"] for r in record["settings"].get("runs", [])[1:]]
    merged = "".join(f", then `{c}`" for c in later)
    note = (" (later runs add their designs with `--merge-into`; each row's deflated Sharpe counts the trials "
            "of its own run)") if later else ""
    return (f"Written by `{COMMAND}` (28 minutes on 2 shared cores){merged}{note}, copied here by "
            f"`python bench/agent_table.py`; the JSON, tables and PNG are in docs/research/.\n\n"
            f"{rep.tables()}\n\nIssue 14's goal for the default (mean Sharpe above buy-and-hold's and the SMA's, "
            f"7 of 8 seeds in profit, mean max drawdown below holding's), test spans:\n\n{rep.goal_check()}\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a file's block differs from the record")
    args = ap.parse_args()
    text = render()
    stale = []
    for path in TARGETS:
        old = path.read_text()
        if not BLOCK.search(old):
            print(f"{path}: no <!-- agent-tables:start --> ... <!-- agent-tables:end --> block")
            return 1
        new = BLOCK.sub(lambda m: m.group(1) + text + m.group(3), old)
        if new != old:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    for path in stale:
        print(f"{path.relative_to(ROOT)}: {'differs from the record' if args.check else 'updated'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
