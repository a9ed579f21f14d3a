"""Draws docs/architecture.svg (and .dot) from the bot's imports: `python docs/architecture.py`.

Needs Graphviz's `dot` (Debian: apt-get install graphviz). The test suite checks that the
committed .dot is what the code gives today (self_test/test_architecture.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from self_test.import_graph import part_dot  # noqa: E402


def main() -> int:
    dot_text = part_dot()
    (ROOT / "docs" / "architecture.dot").write_text(dot_text)
    exe = shutil.which("dot")
    if exe is None:
        print("docs/architecture.dot written; install Graphviz (apt-get install graphviz) to draw the SVG")
        return 1
    svg = subprocess.run([exe, "-Tsvg"], input=dot_text, capture_output=True, text=True, check=True).stdout
    (ROOT / "docs" / "architecture.svg").write_text(svg)
    print("wrote docs/architecture.dot and docs/architecture.svg  (command: python docs/architecture.py)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
