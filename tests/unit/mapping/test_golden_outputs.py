"""Every shipped spec maps the generated samples (both profiles) exactly as recorded: the same
values, byte for byte, and the same errors (record, field, source, value, reason), so a change
of the mapping engine cannot move an output unnoticed (see ``golden.py``)."""

from __future__ import annotations

import json

import pytest

from .golden import FIXTURE, PROFILES, compute


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_outputs_match_the_recorded_ones(profile: str) -> None:
    expected = json.loads(FIXTURE.read_text(encoding="utf-8"))[profile]
    actual = compute(profile)
    assert sorted(actual) == sorted(expected), "the specs mapped changed"
    for spec, entry in expected.items():
        got = actual[spec]
        assert got["first"] == entry["first"], f"{profile}/{spec}: first results differ"
        assert got["first_failed"] == entry["first_failed"], f"{profile}/{spec}: first errors differ"
        assert (got["count"], got["failed"]) == (entry["count"], entry["failed"]), f"{profile}/{spec}: counts"
        assert got["sha256"] == entry["sha256"], f"{profile}/{spec}: some result differs"


def test_the_samples_exercise_errors_and_every_spec() -> None:
    """The fixture is worth something only if bad values were met and every spec ran."""
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    for profile, specs in data.items():
        failed = {spec for spec, entry in specs.items() if entry["failed"]}
        assert {"dossier", "step", "status_report", "inbound_dossier"} <= failed, f"{profile}: {failed}"
        assert {"dossier", "step", "status_report", "inbound_dossier"} <= set(specs), profile
