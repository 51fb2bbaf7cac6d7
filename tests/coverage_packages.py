"""Per-package coverage from coverage.py's JSON report (`make coverage`, docs/testing.md).

coverage.py reports per file; the issue's figure is per package (``dvcsync.sync``, ``mock_portal``
...): statements and branches are summed per package and the percentage taken as coverage.py takes
it, (covered lines + covered branches) / (statements + branches).

    python tests/coverage_packages.py coverage.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path, PurePosixPath


def package_of(path: str) -> str:
    """``dvcsync/sync/push.py`` -> ``dvcsync.sync``; a top-level module is its own unit
    (``dvcsync/metrics.py`` -> ``dvcsync.metrics``); ``mock_portal/...`` -> ``mock_portal``."""
    parts = PurePosixPath(path).with_suffix("").parts
    if parts[0] == "dvcsync" and len(parts) > 1:
        return ".".join(parts[:2]) if parts[1] != "__init__" else "dvcsync"
    return parts[0]


def main(report: str) -> int:
    files = json.loads(Path(report).read_text(encoding="utf-8"))["files"]
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for path, data in files.items():
        summary = data["summary"]
        for total in (sums[package_of(path)], sums["TOTAL"]):
            total[0] += summary["covered_lines"]
            total[1] += summary["num_statements"]
            total[2] += summary.get("covered_branches", 0)
            total[3] += summary.get("num_branches", 0)
    print(f"{'package':28} {'stmts':>7} {'branches':>8} {'cover':>7}")
    for name in sorted(sums, key=lambda n: (n == "TOTAL", n)):
        lines, statements, branches_hit, branches = sums[name]
        if not statements:
            continue  # an empty __init__ (the root package)
        cover = 100.0 * (lines + branches_hit) / max(1, statements + branches)
        print(f"{name:28} {statements:7d} {branches:8d} {cover:6.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "coverage.json"))
