"""The contract's request bodies in an OpenAPI document.

The inbound server and the mock read their bodies raw (``parse_json`` first: depth, encoding,
control characters) and validate them against these models themselves, so FastAPI cannot infer
a body schema from the handlers' signatures. ``publish`` adds it afterwards: each route's
``requestBody`` names its model's schema under ``components/schemas``, with an example, and its
refusals. The schemas are the models' canonical wire form (pydantic's serialization mode: what the
adapter itself emits, e.g. INIT's ``SoTien`` as text); the servers also accept the real-world
variants the models read (ints for codes and amounts, ``"0"`` for ``"00"``...), which a schema
cannot say without losing the canonical form. No FastAPI import: the document is a plain dict.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Body:
    """One route's request body: its model, a named example and its answers beyond 200."""

    model: type[BaseModel]
    example: Mapping[str, Any]
    summary: str = ""
    answers: Mapping[int, str] = field(default_factory=dict)
    reply: type[BaseModel] | None = None


def publish(document: dict[str, Any], bodies: Mapping[tuple[str, str], Body]) -> dict[str, Any]:
    """``document`` with the request bodies of ``bodies`` (keyed by method and path) added, their
    schemas under ``components/schemas``. A route missing from the document is an error: a renamed
    path must not silently drop its schema."""
    out = copy.deepcopy(document)
    schemas = out.setdefault("components", {}).setdefault("schemas", {})
    for (method, path), body in bodies.items():
        operation = out.get("paths", {}).get(path, {}).get(method.lower())
        if operation is None:
            raise KeyError(f"OpenAPI: no {method.upper()} {path} route to publish {body.model.__name__} on")
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": _register(schemas, body.model)},
                    "examples": {
                        "example": {"summary": body.summary or body.model.__name__, "value": body.example}
                    },
                }
            },
        }
        responses = operation.setdefault("responses", {})
        if body.reply is not None:
            ok = responses.setdefault("200", {"description": "Successful Response"})
            ok["content"] = {"application/json": {"schema": {"$ref": _register(schemas, body.reply)}}}
        responses.pop("422", None)  # FastAPI's validation answer: these routes never give it
        for status, description in body.answers.items():
            responses[str(status)] = {"description": description}
    if not any(
        "422" in op.get("responses", {}) for item in out.get("paths", {}).values() for op in item.values()
    ):
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
    return out


def _register(schemas: dict[str, Any], model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="serialization", ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return REF.format(model=model.__name__)


class _App(Protocol):
    openapi_schema: dict[str, Any] | None

    def openapi(self) -> dict[str, Any]: ...


def attach(app: _App, bodies: Mapping[tuple[str, str], Body]) -> None:
    """Make ``app`` (a FastAPI application) serve its OpenAPI document with ``bodies`` published,
    built once on the first request for ``/openapi.json`` (or ``/docs``), as FastAPI does."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = publish(generate(), bodies)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
