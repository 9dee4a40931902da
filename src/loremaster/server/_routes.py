"""The REST resources of a context beyond the context itself, and validation: one
router of their routers."""

from __future__ import annotations

from fastapi import APIRouter

from . import _collaboration, _messages, _translation, _validation, _versions

__all__ = ["router"]

router = APIRouter()
for _module in (_messages, _versions, _collaboration, _translation, _validation):
    router.include_router(_module.router)
