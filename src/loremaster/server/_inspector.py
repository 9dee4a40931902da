"""The web inspector: a page at ``/`` and its static assets at ``/ui/`` (plain ES
modules shipped inside the package: nothing to build, nothing fetched from elsewhere)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS", "router"]

ASSETS = Path(__file__).with_name("_inspector")

_POLICY = (
    "default-src 'self'; img-src 'self' data: blob: https: http:; "
    "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""The page runs only its own scripts; a message's image may come from anywhere."""

router = APIRouter(include_in_schema=False)
router.mount("/ui", StaticFiles(directory=ASSETS, follow_symlink=False), name="inspector")


@router.get("/")
async def inspector() -> Response:
    """The inspector's page (its routes live after ``#``, so a deep link is this page)."""
    return FileResponse(
        ASSETS / "index.html",
        headers={"Content-Security-Policy": _POLICY, "Cache-Control": "no-cache"},
    )
