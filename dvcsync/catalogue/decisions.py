"""Decisions written into the mapping: the overlay code table over the procedures table
(``mappings/codes/procedure_decisions.yaml``), with who decided and when.

The file is rewritten whole, in a stable order and format (JSON-quoted strings, valid YAML), so a
review is a readable diff; decisions already in it are kept unless the new review changes them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from dvcsync.contract import VN_TZ

OVERLAY = "procedure_decisions"
NO_EQUIVALENT = "no national equivalent"
HEADER = """\
# Written by `dvcsync catalogue apply` from the reviewed matching file (docs/catalogue.md); it
# overlays the generated procedures table: an entry here replaces that table's, a skip key has no
# national equivalent and its dossiers are not sent.
"""
# attribute of a procedures entry → what of the national procedure fills it
ATTRIBUTES = {
    "ma_tthc": "code",
    "ten_tthc": "name",
    "ma_linh_vuc": "sector_code",
    "ten_linh_vuc": "sector_name",
}


@dataclass(frozen=True)
class Accepted:
    local_code: str
    values: dict[str, str]  # the procedures table's attributes (ma_tthc, ten_tthc, ...)


def _q(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _flow(values: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_q(v)}" for k, v in values.items()) + "}"


def overlay_path(mappings_folder: Path, base: str = "procedures") -> Path:
    """The overlay of ``base`` in the folder: the file that names it, else the default name."""
    for path in sorted((mappings_folder / "codes").glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and doc.get("overlays") == base:
            return path
    return mappings_folder / "codes" / f"{OVERLAY}.yaml"


def write_decisions(
    path: Path,
    accepted: Sequence[Accepted],
    no_equivalent: Sequence[str],
    *,
    by: str,
    at: datetime | None = None,
    base: str = "procedures",
) -> dict[str, int]:
    """Merge the decisions into the overlay file (created when missing); returns what changed."""
    stamp = (at or datetime.now(VN_TZ)).isoformat(timespec="seconds")
    doc: dict[str, Any] = {}
    if path.exists():
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries: dict[str, dict[str, Any]] = {str(k): dict(v) for k, v in (doc.get("entries") or {}).items()}
    skip: dict[str, dict[str, Any]] = {str(k): dict(v) for k, v in (doc.get("skip") or {}).items()}
    counts = {"accepted": 0, "no_equivalent": 0, "unchanged": 0}
    for item in accepted:
        old = entries.get(item.local_code)
        if old is not None and all(old.get(k) == v for k, v in item.values.items()):
            counts["unchanged"] += 1
            continue
        skip.pop(item.local_code, None)
        entries[item.local_code] = {**item.values, "decided_by": by, "decided_at": stamp}
        counts["accepted"] += 1
    for code in no_equivalent:
        if code in skip:
            counts["unchanged"] += 1
            continue
        entries.pop(code, None)
        skip[code] = {"reason": NO_EQUIVALENT, "decided_by": by, "decided_at": stamp}
        counts["no_equivalent"] += 1
    lines = [
        HEADER.rstrip("\n"),
        f"name: {path.stem}",
        f"description: {doc.get('description') or 'catalogue review decisions over the procedures table'}",
        f"overlays: {doc.get('overlays') or base}",
    ]
    lines.append("entries:" + ("" if entries else " {}"))
    lines += [f"  {code}: {_flow(entries[code])}" for code in sorted(entries)]
    lines.append("skip:" + ("" if skip else " {}"))
    lines += [f"  {code}: {_flow(skip[code])}" for code in sorted(skip)]
    text = "\n".join(lines) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a file
    return counts


def default_user() -> str:
    """Who applies, when ``--by`` is not given: the operating system's user."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (a container without /etc/passwd entry)
        return "unknown"
