"""The router of the routes that answer with plain dicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter


class DictRouter(APIRouter):
    """An APIRouter whose routes return plain dicts documented by a response model
    (``service/api/schemas/_base.py``): every route is declared with
    ``response_model_exclude_unset=True``, so a key the dict lacks stays absent from the answer
    (it is not written as null)."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **{**kwargs, "response_model_exclude_unset": True})
