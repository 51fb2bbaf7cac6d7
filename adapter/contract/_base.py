"""The base of every wire model."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """Attribute names are the wire names; unknown fields are kept (newer clients send more).

    ``to_wire`` emits the canonical form: fields that were never given stay absent, so a body
    parsed and emitted again is the same body, and a mapped record carries only what it maps.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, validate_assignment=False)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_wire(cls, data: Any) -> Self:
        return cls.model_validate(data)
