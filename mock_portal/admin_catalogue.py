"""``/_admin/catalogue``: change the mock's national catalogue while it runs (tests and demos of
``dvcsync catalogue pull``): add, rename, withdraw or remove a procedure, change its fees or
processing time; add, rename or abolish an agency. Registered in ``app.py`` by
``app.include_router(catalogue_admin_router(portal.catalogue))``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException

from .catalogue import Catalogue


def catalogue_admin_router(catalogue: Catalogue) -> APIRouter:
    router = APIRouter(prefix="/_admin/catalogue", tags=["admin"])

    def _do(action: Any) -> Any:
        try:
            return action()
        except KeyError as exc:
            raise HTTPException(404, f"not in the catalogue: {exc.args[0]}") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("")
    def summary() -> dict[str, Any]:
        procedures = catalogue.doc["procedures"]
        return {
            "procedures": len(procedures),
            "active": sum(1 for p in procedures if str(p.get("TRANGTHAI", "1")) == "1"),
            "agencies": len(catalogue.doc["agencies"]),
            "sectors": len(catalogue.doc["sectors"]),
        }

    @router.post("/procedures")
    def add_procedure(item: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        return dict(_do(lambda: catalogue.add_procedure(item)))

    @router.patch("/procedures/{code}")
    def change_procedure(code: str, changes: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        return dict(_do(lambda: catalogue.change_procedure(code, changes)))

    @router.delete("/procedures/{code}")
    def remove_procedure(code: str) -> dict[str, str]:
        _do(lambda: catalogue.remove_procedure(code))
        return {"removed": code}

    @router.post("/agencies")
    def add_agency(item: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        return dict(_do(lambda: catalogue.change_agency(str(item.get("MADONVI") or ""), item, create=True)))

    @router.patch("/agencies/{code}")
    def change_agency(code: str, changes: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        return dict(_do(lambda: catalogue.change_agency(code, changes)))

    return router
