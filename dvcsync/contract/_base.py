"""The base of every wire model."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """Attribute names are the wire names; unknown fields are kept (newer clients send more).

    ``to_wire`` emits the canonical form: optional fields that were never given (or were ``null``)
    stay absent, fields with a contract default (``isUpdating``, ``PhienBan``, an empty ``message``...)
    are emitted with it. A canonical body parsed and emitted again is the same body; a variant body
    becomes its canonical form (``tests/fixtures/contract/*.canonical.json`` pin both).

    Validation errors do not print the input (``hide_input_in_errors``): a whole-record error would
    otherwise print the record, phone and ID numbers included, wherever the error is logged. The
    checks of this package name the offending value themselves; ``exc.errors()`` still has the input.
    """

    model_config = ConfigDict(
        extra="allow", populate_by_name=True, validate_assignment=False, hide_input_in_errors=True
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_wire(cls, data: Any) -> Self:
        return cls.model_validate(data)
