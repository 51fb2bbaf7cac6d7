"""Where a mapping's records come from in the province's database: a table, its key, its
change-tracking column and its child tables.

Shared by ``adapter.mapping`` (specs declare it) and ``adapter.province`` (the source reads by
it), which must not depend on each other: it sits below both, like ``adapter.contract``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChildSpec(_Strict):
    """A child table read with its parent (``<table>.ho_so_id = parent.id``)."""

    table: Identifier
    key: Identifier = Field(default="id", description="the child row's identity (e.g. a step's id)")
    foreign_key: Identifier = "ho_so_id"
    order_by: list[Identifier] = Field(default_factory=lambda: ["id"])


class SourceSpec(_Strict):
    """Where the records come from in the province's database."""

    table: Identifier
    key: Identifier = "id"
    record_key: Identifier = Field(description="column that names the record in errors, e.g. so_ho_so")
    updated_at: Identifier | None = Field(default=None, description="change-tracking column")
    children: dict[Identifier, ChildSpec] = Field(default_factory=dict)


__all__ = ["ChildSpec", "Identifier", "SourceSpec"]
