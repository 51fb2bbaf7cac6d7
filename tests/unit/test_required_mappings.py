"""A spec a job needs that is missing or empty is a configuration error at load time: every
command that loads mappings exits 2 naming the file, `config check` reports it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dvcsync.cli import app
from dvcsync.mapping import MappingSet, MappingSpecError, load_mappings
from dvcsync.mapping.required import JOBS, needs_of

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dvcsync.province.sample import generate

    path = tmp_path_factory.mktemp("required") / "onestop.db"
    generate(path, 60, 3)
    return path


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", folder)
    return folder


def _config(tmp_path: Path, db: Path, mappings: Path) -> Path:
    config = tmp_path / "dvcsync.toml"
    config.write_text(
        f'[province]\nsource_url = "sqlite:///{db}"\nmappings = "{mappings}"\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n',
        encoding="utf-8",
    )
    return config


def _problems(folder: Path, jobs: tuple[str, ...] = JOBS) -> list[tuple[str, int | None, str, str]]:
    with pytest.raises(MappingSpecError) as info:
        load_mappings(folder, require=jobs)
    return [(str(p.relative_to(folder)), line, key, msg) for p, line, key, msg in info.value.problems]


def test_the_shipped_folder_has_everything_every_job_needs() -> None:
    mset = load_mappings(REPO / "mappings", require=JOBS)
    assert {need.name for need in needs_of(JOBS) if not need.code_table} <= set(mset.specs)


def test_a_partial_folder_loads_without_require(mappings: Path) -> None:
    (mappings / "step.yaml").unlink()
    assert "step" not in load_mappings(mappings).specs  # tests and tools may load what is there


@pytest.mark.parametrize(
    ("removed", "job", "words"),
    [
        ("step.yaml", "push", "no history would be sent"),
        ("dossier.yaml", "reconcile", "reads the province's dossiers"),
        ("status_report.yaml", "push", "DongBoTrangThaiHoSo"),
        ("inbound_dossier.yaml", "pull", "portal-submitted dossiers"),
        ("payment_receipt.yaml", "payments", "before processing"),
        ("payment_receipt_after.yaml", "payments", "after processing"),
        ("inbound_promotion.yaml", "server", "promotion notifications"),
        ("codes/agencies.yaml", "satisfaction", "national agency code"),
    ],
)
def test_a_missing_spec_names_its_file_and_the_job(
    mappings: Path, removed: str, job: str, words: str
) -> None:
    (mappings / removed).unlink()
    if removed == "dossier.yaml":  # the specs reading its children go with it
        for name in ("step.yaml", "status_report.yaml"):
            (mappings / name).unlink()
    [(line, key, message)] = [(ln, k, m) for name, ln, k, m in _problems(mappings, (job,)) if name == removed]
    assert (line, key) == (None, "")
    assert message.startswith("missing: ") and words in message


def test_an_empty_spec_says_empty_and_why(mappings: Path) -> None:
    (mappings / "step.yaml").write_text("# to do\n", encoding="utf-8")
    [(name, _, _, message)] = _problems(mappings)
    assert name == "step.yaml" and message.startswith("empty: the push job sends processing history")
    (mappings / "step.yaml").unlink()
    (mappings / "extra.yaml").write_text("", encoding="utf-8")
    problems = _problems(mappings, ())
    assert problems == [("extra.yaml", None, "", "empty: a mapping spec needs name, output and fields")]


def test_a_status_report_that_takes_no_records_is_named(mappings: Path) -> None:
    path = mappings / "status_report.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("applies_to: {column: ma_ho_so_qg}\n", ""), "utf-8"
    )
    [(name, line, key, message)] = _problems(mappings)
    assert (name, key) == ("status_report.yaml", "applies_to") and line is not None
    assert "missing: the push job reports the status" in message


def test_the_shape_a_job_relies_on_is_checked(mappings: Path) -> None:
    path = mappings / "dossier.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  updated_at: updated_at\n", ""), "utf-8")
    step = mappings / "step.yaml"
    step.write_text(
        step.read_text(encoding="utf-8").replace("items_of: {mapping: dossier, child: steps}\n", ""), "utf-8"
    )
    problems = _problems(mappings)
    assert any(n == "dossier.yaml" and k == "source" and "updated_at" in m for n, _, k, m in problems)
    assert any(n == "step.yaml" and k == "items_of" and "no history" in m for n, _, k, m in problems)


def test_unknown_jobs_are_a_programming_error(mappings: Path) -> None:
    with pytest.raises(ValueError, match="unknown jobs"):
        load_mappings(mappings, require=("push", "posh"))


def test_config_check_and_sync_push_without_step_yaml_exit_2_naming_it(
    tmp_path: Path, sample_db: Path, mappings: Path
) -> None:
    (mappings / "step.yaml").unlink()
    config = _config(tmp_path, sample_db, mappings)
    checked = runner.invoke(app, ["--config", str(config), "config", "check"])
    assert checked.exit_code == 2, checked.output
    assert "step.yaml: missing: the push job sends processing history" in checked.output
    assert "configuration OK" not in checked.output
    as_json = json.loads(runner.invoke(app, ["--config", str(config), "config", "check", "--json"]).stdout)
    assert as_json["invalid"] is True and any("step.yaml" in p for p in as_json["problems"])
    for command in (["sync", "push"], ["mappings", "check"], ["push", "dossier", "X", "--dry-run"]):
        result = runner.invoke(app, ["--config", str(config), *command])
        assert result.exit_code == 2, (command, result.output)
        assert f"{mappings / 'step.yaml'}: missing:" in result.output.replace("\n", ""), command
    assert not (tmp_path / "state.db").exists()  # refused before anything was opened


def test_mappings_check_lists_deliberate_skips_apart_from_failures(
    tmp_path: Path, sample_db: Path, mappings: Path, default_mapping_set: MappingSet
) -> None:
    with sqlite3.connect(sample_db) as conn:
        used = {row[0] for row in conn.execute("SELECT DISTINCT ma_thu_tuc FROM ho_so")}
    known = set(default_mapping_set.codes["procedures"])
    unknown = sorted(used - known)
    assert unknown, "the sample holds dossiers on procedures with no national code"
    skips = "".join(f"  {code}: {{reason: no national equivalent, decided_by: test}}\n" for code in unknown)
    decisions = mappings / "codes" / "procedure_decisions.yaml"
    decisions.write_text(
        decisions.read_text(encoding="utf-8").replace("skip: {}\n", "skip:\n" + skips), encoding="utf-8"
    )
    config = _config(tmp_path, sample_db, mappings)
    result = runner.invoke(app, ["--config", str(config), "mappings", "check", "--json"])
    report = json.loads(result.stdout)
    assert not any(f["field"] == "MaTTHC" for f in report["failures"]), report["failures"]
    assert report["skipped"]["dossier"] > 0
    assert {s["mapping"] for s in report["skips"]} >= {"dossier"}
    assert all(s["reason"].startswith("not sent: ") and s["examples"] for s in report["skips"])
    assert result.exit_code == (0 if report["ok"] else 1)
    coverage = report["coverage"]
    assert set(coverage) == set(load_mappings(mappings).specs)  # every spec, said how
    assert "round trip" in coverage["inbound_dossier"] and report["records"]["inbound_dossier"] > 0
    assert coverage["inbound_promotion"].startswith("not run: ")
    assert "ma_ho_so_qg filled" in coverage["status_report"]
    assert coverage["fee"].startswith("within dossier.DanhSachLePhi")
    table = runner.invoke(app, ["--config", str(config), "mappings", "check"])
    assert "left out on purpose" in table.stdout and "how each spec was checked" in table.stdout


def test_a_parent_placeholder_runs_through_mappings_check_and_push_dry_run(
    tmp_path: Path, sample_db: Path, mappings: Path
) -> None:
    step = mappings / "step.yaml"
    step.write_text(
        step.read_text(encoding="utf-8").replace(
            "NoiDungXuLy: {path: noi_dung, format: text, required: true}",
            'NoiDungXuLy: {template: "{noi_dung} ({parent.so_ho_so})"}',
        ),
        encoding="utf-8",
    )
    config = _config(tmp_path, sample_db, mappings)
    checked = runner.invoke(app, ["--config", str(config), "mappings", "check", "--json"])
    assert checked.exit_code in (0, 1), checked.output  # no AttributeError on {parent.x}
    report = json.loads(checked.stdout)
    assert report["records"]["step"] > 0 and report["failed"].get("step", 0) == 0
    with sqlite3.connect(sample_db) as conn:
        number = conn.execute(
            "SELECT so_ho_so FROM ho_so WHERE ma_ho_so_qg IS NULL AND ma_thu_tuc = 'HT-KS-01'"
            " AND id IN (SELECT ho_so_id FROM qua_trinh_xu_ly) LIMIT 1"
        ).fetchone()[0]
    result = runner.invoke(app, ["--config", str(config), "push", "dossier", number, "--dry-run"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)["CapNhatTienDoHoSoMC"]["data"]
    assert entries and all(entry["NoiDungXuLy"].endswith(f"({number})") for entry in entries)
