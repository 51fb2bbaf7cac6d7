"""No table or column name of the sample one-stop schema in dvcsync/ outside the sample itself
(dvcsync/province/sample/) and the shipped defaults (dvcsync/province/schema.py): the province's
schema is configuration (mappings/province.yaml and the mapping specs), so code that names a
sample column only works on the sample (issue #19 item 1).

The few words below are allowed where they are not the sample's names but dvcsync's own: each
entry says why."""

from __future__ import annotations

import re
from pathlib import Path

from ..renamed_schema import ROOT, sample_identifiers

EXEMPT_DIRS = ("dvcsync/province/sample/",)
EXEMPT_FILES = {"dvcsync/province/schema.py"}  # the shipped defaults: the sample's names, by design
WORD = re.compile(r"\b[a-z][a-z0-9_]*\b")
# words of the sample DDL that are also everyday words of any schema or program
GENERIC = {"id", "name", "cap"}

_STATE = {"created_at", "updated_at"}  # the state store's own tables (outbox, inbox, dossier_state…)
_SOURCE_KEY = {"updated_at"}  # the mapping format's key `source.updated_at` (SourceSpec.updated_at)
ALLOWED: dict[str, set[str]] = {
    "dvcsync/state/": _STATE,
    "dvcsync/source_spec.py": _SOURCE_KEY,
    "dvcsync/mapping/required.py": _SOURCE_KEY,
    "dvcsync/province/instants.py": _SOURCE_KEY,
    # SourceSpec.updated_at; OUTBOX_T.c.created_at (the state's outbox) [push.py is not this
    # change's to edit: its docstring of local_iso also says "the sample schema's updated_at"]
    "dvcsync/sync/push.py": _STATE,
    # SourceSpec.updated_at [source.py: its docstring of get() gives "so_ho_so" as an example; not
    # this change's to edit]
    "dvcsync/province/source.py": _SOURCE_KEY | {"so_ho_so"},
    # the reconcile stream's row key for a dossier's last change (from the schema's audit column),
    # and the state's own columns
    "dvcsync/province/reconcile.py": {"updated_at"},
    "dvcsync/reconcile/portal_check.py": {"updated_at"},
    "dvcsync/reconcile/province_state.py": _STATE,
    # attributes of the procedures code table (mappings/codes/procedures.yaml) that catalogue
    # apply writes: the code-table format's vocabulary, not a column of the province
    "dvcsync/catalogue/decisions.py": {"ma_linh_vuc", "ten_linh_vuc"},
    "dvcsync/portal/retry.py": {"email"},  # the standard library's email.utils
}


def _files() -> list[Path]:
    out = []
    for path in sorted((ROOT / "dvcsync").rglob("*")):
        name = path.relative_to(ROOT).as_posix()
        if not path.is_file() or "__pycache__" in name or path.suffix in (".pyc", ".wsdl"):
            continue
        if name in EXEMPT_FILES or name.startswith(EXEMPT_DIRS):
            continue
        out.append(path)
    return out


def _allowed(name: str) -> set[str]:
    return set().union(*(words for prefix, words in ALLOWED.items() if name.startswith(prefix)))


def test_no_sample_identifier_in_adapter() -> None:
    names = sample_identifiers() - GENERIC
    files = _files()
    assert len(files) > 100 and any(f.suffix == ".html" for f in files)  # the walk found dvcsync/
    found = []
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        banned = names - _allowed(name)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            words = sorted({w for w in WORD.findall(line) if w in banned})
            if words:
                found.append(f"{name}:{number}: {', '.join(words)}")
    assert not found, "sample identifiers outside the shipped defaults:\n" + "\n".join(found)


def test_the_grep_would_find_one() -> None:
    """The test can fail: a sample column in a file of dvcsync/ is found, an allowed word only
    where it is allowed."""
    names = sample_identifiers() - GENERIC
    line = 'conn.execute("SELECT ma_ho_so_qg FROM ho_so WHERE updated_at > ?")'
    assert {w for w in WORD.findall(line) if w in names - _allowed("dvcsync/sync/pull.py")} == {
        "ma_ho_so_qg",
        "ho_so",
        "updated_at",
    }
    assert "updated_at" not in names - _allowed("dvcsync/state/store.py")
    assert {"ho_so", "so_ho_so", "thanh_toan", "created_at", "muc_do"} <= names


def test_allow_list_entries_are_still_needed() -> None:
    """An allowance no file needs any more goes (the list only shrinks)."""
    names = sample_identifiers() - GENERIC
    for prefix, words in ALLOWED.items():
        used = set()
        for path in _files():
            if path.relative_to(ROOT).as_posix().startswith(prefix):
                used |= {w for w in WORD.findall(path.read_text(encoding="utf-8")) if w in names}
        assert words & used, f"{prefix}: none of {sorted(words)} is used there any more"
