"""``/_admin/catalogue``: change the mock's national catalogue while it runs (tests and demos of
``dvcsync catalogue pull``): add, rename, withdraw or remove a procedure, change its fees or
processing time; add, rename or abolish an agency. Registered in ``app.py`` by
``app.include_router(catalogue_admin_router(portal.catalogue))``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from .catalogue import Catalogue


def _catalogue(request: Request) -> Catalogue:
    """The catalogue of the mock this request reached, bound by its ``catalogue_admin_router``."""
    catalogue: Catalogue = request.state.mock_catalogue
    return catalogue


MockCatalogue = Annotated[Catalogue, Depends(_catalogue)]

# The handlers, at module level; catalogue_admin_router() binds them to one mock's catalogue.
_routes = APIRouter()


def catalogue_admin_router(catalogue: Catalogue) -> APIRouter:
    """The catalogue's admin routes under ``/_admin/catalogue``, acting on ``catalogue``."""

    def bind(request: Request) -> None:
        request.state.mock_catalogue = catalogue

    router = APIRouter(tags=["admin"], dependencies=[Depends(bind)])
    router.include_router(_routes, prefix="/_admin/catalogue")  # the summary's own path is ""
    return router


def _do(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except KeyError as exc:
        raise HTTPException(404, f"not in the catalogue: {exc.args[0]}") from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@_routes.get("")
def summary(catalogue: MockCatalogue) -> dict[str, Any]:
    procedures = catalogue.doc["procedures"]
    return {
        "procedures": len(procedures),
        "active": sum(1 for p in procedures if str(p.get("TRANGTHAI", "1")) == "1"),
        "agencies": len(catalogue.doc["agencies"]),
        "sectors": len(catalogue.doc["sectors"]),
    }


@_routes.post("/procedures")
def add_procedure(catalogue: MockCatalogue, item: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
    return dict(_do(lambda: catalogue.add_procedure(item)))


@_routes.patch("/procedures/{code}")
def change_procedure(
    code: str,
    catalogue: MockCatalogue,
    changes: dict[str, Any] = Body(...),  # noqa: B008
) -> dict[str, Any]:
    return dict(_do(lambda: catalogue.change_procedure(code, changes)))


@_routes.delete("/procedures/{code}")
def remove_procedure(code: str, catalogue: MockCatalogue) -> dict[str, str]:
    _do(lambda: catalogue.remove_procedure(code))
    return {"removed": code}


@_routes.post("/agencies")
def add_agency(catalogue: MockCatalogue, item: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
    return dict(_do(lambda: catalogue.change_agency(str(item.get("MADONVI") or ""), item, create=True)))


@_routes.patch("/agencies/{code}")
def change_agency(
    code: str,
    catalogue: MockCatalogue,
    changes: dict[str, Any] = Body(...),  # noqa: B008
) -> dict[str, Any]:
    return dict(_do(lambda: catalogue.change_agency(code, changes)))
