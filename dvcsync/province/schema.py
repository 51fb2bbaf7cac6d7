"""The province's database schema as configuration: ``mappings/province.yaml``.

Everything dvcsync writes to, or reads from, the one-stop database outside the mapping specs
(tables, key and id columns, how new ids are made, audit columns, the status values the adapter
writes, the payment ledger, the catalogue of local procedures, ratings, what reconcile compares)
is named here, so another province's schema is a file, not code. The defaults of these models are
the sample one-stop schema's (``dvcsync/province/sample/schema.py``), shipped as
``mappings/province.yaml``; a folder without the file runs on them.

The file is checked when it is loaded: an unknown key, a name that is not an identifier, a
missing sequence, each is reported with the file, line and key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from dvcsync.errors import TerminalError

SCHEMA_FILE = "province.yaml"

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*$")]
Scalar = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ids(_Strict):
    """How a new row gets its id.

    ``autoincrement``: the database makes it (``INTEGER PRIMARY KEY``, ``SERIAL``, identity);
    ``sequence``: ``nextval(sequence)`` (PostgreSQL, Oracle-style schemas);
    ``counter``: the application's own counter row, as OpenCPS/Liferay keep it (``counter``
    table: ``name``, ``currentid``): incremented in the same transaction as the insert."""

    strategy: Literal["autoincrement", "sequence", "counter"] = "autoincrement"
    sequence: Identifier | None = Field(default=None, description="strategy sequence: its name")
    counter_table: Identifier = "counter"
    counter_name_column: Identifier = "name"
    counter_value_column: Identifier = "currentid"
    counter_name: str | None = Field(default=None, description="strategy counter: the counter's name")

    @model_validator(mode="after")
    def _complete(self) -> Ids:
        if self.strategy == "sequence" and not self.sequence:
            raise ValueError("strategy 'sequence' needs 'sequence' (the sequence's name)")
        if self.strategy == "counter" and not self.counter_name:
            raise ValueError("strategy 'counter' needs 'counter_name' (the counter's row)")
        return self


class Audit(_Strict):
    """Columns the province keeps of when a row was made and last changed (``null``: none)."""

    created: Identifier | None = None
    updated: Identifier | None = None


class Dossiers(_Strict):
    table: Identifier = "ho_so"
    id: Identifier = "id"
    ids: Ids = Ids()
    audit: Audit = Audit(created="created_at", updated="updated_at")
    key: Identifier = Field(default="so_ho_so", description="the local number (→ MaHoSo)")
    portal_code: Identifier = Field(
        default="ma_ho_so_qg", description="the portal's MaHoSo of a dossier submitted there"
    )
    status: Identifier = Field(default="trang_thai", description="the local status keyword")
    received: Identifier | None = "ngay_tiep_nhan"
    agency: Identifier = "ma_don_vi"
    procedure: Identifier = "ma_thu_tuc"
    owner: Identifier | None = "chu_ho_so"


class Child(_Strict):
    """A table whose rows belong to one dossier."""

    table: Identifier
    id: Identifier = "id"
    ids: Ids = Ids()
    audit: Audit = Audit()
    dossier: Identifier = Field(default="ho_so_id", description="the column naming the dossier's id")


_WITHDRAWAL_STEP: dict[str, Scalar] = {
    "can_bo": "Cổng DVC quốc gia",
    "chuc_danh": "Công dân",
    "phong_ban": None,
    "noi_dung": "Công dân yêu cầu rút hồ sơ trên Cổng DVC quốc gia",
}


class Steps(Child):
    table: Identifier = "qua_trinh_xu_ly"
    order: Identifier | None = Field(default="thu_tu", description="1, 2, ... within a dossier; null: none")
    status: Identifier = "trang_thai"
    moment: Identifier = "thoi_diem"
    withdrawal: dict[Identifier, Scalar] = Field(
        default_factory=lambda: dict(_WITHDRAWAL_STEP),
        description="the other columns of the step that records a withdrawal made on the portal",
    )


class CollectedAfter(_Strict):
    """When a fee is collected, for a fee row without a column saying so: after processing when
    ``column`` holds one of ``values`` (or nothing), up front otherwise. OpenCPS fills
    ``advanceAmount`` of a fee collected up front and leaves it 0 for one collected after."""

    column: Identifier
    values: list[Scalar] = Field(min_length=1)


class Fees(Child):
    table: Identifier = "le_phi"
    amount: Identifier = "so_tien"
    collection: Identifier | CollectedAfter = Field(
        default="hinh_thuc_thu",
        description="when the fee is collected: a column holding ahead/after, or {column, values}"
        " (after processing when the column holds one of values, up front otherwise)",
    )
    ahead: str = Field(default="thu_truoc", description="collection value: paid before processing")
    after: str = Field(default="thu_sau", description="collection value: paid after processing")
    paid: Identifier = "da_thanh_toan"
    paid_yes: Scalar = 1
    paid_no: Scalar | list[Scalar] = Field(
        default=0, description="the value (or values) of a fee not paid yet; the first is written"
    )

    @property
    def unpaid(self) -> list[Scalar]:
        return list(self.paid_no) if isinstance(self.paid_no, list) else [self.paid_no]


class Documents(Child):
    table: Identifier = "tai_lieu"


class Payments(Child):
    """Payment attempts: one row an INIT, moved once to paid or failed.

    ``on_fees``: the province keeps no attempt table; an attempt is written on the fee rows it
    bills (``table`` is then ``fees.table``, ``state`` may be ``fees.paid``): one reference on
    several rows, its amount their sum. OpenCPS's ``opencps_paymentfile`` is a fee and its payment
    in one row. ``state_failed`` may then equal an unpaid value: a failed attempt's fees are
    billed again."""

    on_fees: bool = False
    table: Identifier = "thanh_toan"
    reference: Identifier = "ma_tham_chieu"
    amount: Identifier = "so_tien"
    state: Identifier = "trang_thai"
    transaction: Identifier = "ma_giao_dich"
    bank: Identifier = "ngan_hang"
    created: Identifier = "thoi_gian_tao"
    settled: Identifier = "thoi_gian_ket_qua"
    receipt: Identifier = "bien_lai"
    state_created: str | int = "created"
    state_paid: str | int = "paid"
    state_failed: str | int = "failed"

    @model_validator(mode="after")
    def _distinct(self) -> Payments:
        states = {str(self.state_created), str(self.state_paid), str(self.state_failed)}
        if len(states) != 3:
            raise ValueError("state_created, state_paid and state_failed must differ")
        return self


class Statuses(_Strict):
    """Local status keywords the adapter reads or writes itself (not through a mapping)."""

    paying: str = Field(default="paying", description="a dossier in it is billed for its unpaid fees")
    withdrawn: str | None = Field(
        default=None,
        description="written when the citizen withdraws on the portal; null: the statuses"
        " code table's local value of national 7",
    )
    withdrawable: list[str] | None = Field(
        default=None, description="local statuses a withdrawal is applied from; null: from the code table"
    )


class NationalCodes(_Strict):
    """Where the national code of a local procedure is kept when not on the catalogue's row
    (OpenCPS: ``opencps_serviceinfomapping``, ``serviceCode`` → ``serviceCodeDVCQG``)."""

    table: Identifier
    code: Identifier = Field(description="the local procedure code")
    national_code: Identifier


class Catalogue(_Strict):
    """The province's own procedures (``catalogue match``)."""

    table: Identifier = "thu_tuc"
    code: Identifier = "ma_thu_tuc"
    name: Identifier = "ten_thu_tuc"
    national_code: Identifier = Field(
        default="ma_tthc_qg", description="a column of the catalogue, or of national_codes.table"
    )
    national_codes: NationalCodes | None = Field(
        default=None, description="the table of national codes; null: national_code is on the catalogue row"
    )
    unverified: Identifier | None = Field(default="chua_xac_minh", description="null: none is unverified")
    sector_code: Identifier = "ma_linh_vuc"
    sector_name: Identifier = "ten_linh_vuc"
    days: Identifier | None = Field(
        default="so_ngay_xu_ly",
        description="processing days: a number, or text starting with one ('15 ngày làm việc'); null: none",
    )


class RatingsThrough(_Strict):
    """The table between a rating and its dossier (OpenCPS: a vote, ``opencps_votingresult``,
    answers a question, ``opencps_voting``, asked about ``classPK`` of class ``className``)."""

    table: Identifier
    id: Identifier = Field(description="its id, named by the ratings' dossier column")
    dossier: Identifier = Field(description="its column naming the dossier's id")
    where: dict[Identifier, Scalar] = Field(
        default_factory=dict, description="only its rows with these values"
    )


class Ratings(Child):
    """Citizens' ratings of returned dossiers (``sync satisfaction``). With ``through`` the
    ``dossier`` column names a row of that table, which names the dossier."""

    table: Identifier = "danh_gia"
    through: RatingsThrough | None = None
    level: Identifier = "muc_do"
    moment: Identifier = "thoi_diem"
    levels: tuple[str, str, str] = Field(
        default=("rat_hai_long", "hai_long", "chua_hai_long"),
        description="the local values of the contract's three levels, best first",
    )


class ProvinceSchema(_Strict):
    """What dvcsync knows of the province's database."""

    dossiers: Dossiers = Dossiers()
    steps: Steps = Steps()
    fees: Fees = Fees()
    documents: Documents = Documents()
    payments: Payments = Payments()
    statuses: Statuses = Statuses()
    catalogue: Catalogue = Catalogue()
    ratings: Ratings = Ratings()

    def child(self, table: str) -> Child | None:
        """The child table of that name (a list-valued field of an inbound mapping names one)."""
        for candidate in (self.steps, self.fees, self.documents, self.payments, self.ratings):
            if candidate.table == table:
                return candidate
        return None


class ProvinceSchemaError(TerminalError, ValueError):
    """``province.yaml`` is invalid: every problem with its file, line and key."""

    def __init__(self, path: Path, problems: list[tuple[int | None, str, str]]) -> None:
        self.path, self.problems = path, problems
        lines = []
        for line, key, message in problems:
            where = f"{path}:{line}" if line else str(path)
            lines.append(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        super().__init__("\n".join(lines))


def load_schema(folder: str | Path | None) -> ProvinceSchema:
    """``folder/province.yaml``, or the shipped defaults when the folder has none."""
    if folder is None:
        return ProvinceSchema()
    path = Path(folder) / SCHEMA_FILE
    if not path.is_file():
        return ProvinceSchema()
    return parse_schema(path)


def parse_schema(path: Path) -> ProvinceSchema:
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ProvinceSchemaError(path, [(None, "", f"not valid UTF-8 ({exc.reason})")]) from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ProvinceSchemaError(path, [(line, "", f"YAML syntax error: {exc.problem}")]) from None
    if data is None:
        return ProvinceSchema()
    try:
        return ProvinceSchema.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = tuple(error.get("loc", ()))
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            if error.get("type") == "extra_forbidden":
                message = f"unknown key {loc[-1]!r}" if loc else "unknown key"
            problems.append((_line_of(node, loc), ".".join(str(p) for p in loc), message))
        raise ProvinceSchemaError(path, problems) from None


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """The line of ``loc`` in the composed YAML, or of its nearest ancestor found."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if found is None:
                return line
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


__all__ = [
    "SCHEMA_FILE",
    "Audit",
    "Catalogue",
    "Child",
    "CollectedAfter",
    "Documents",
    "Dossiers",
    "Fees",
    "Ids",
    "NationalCodes",
    "Payments",
    "ProvinceSchema",
    "ProvinceSchemaError",
    "Ratings",
    "RatingsThrough",
    "Statuses",
    "Steps",
    "load_schema",
]
