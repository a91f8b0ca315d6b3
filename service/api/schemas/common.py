"""Small shapes several resources share."""

from __future__ import annotations

from pydantic import Field

from service.api.schemas._base import ResponseModel


class Window(ResponseModel):
    since: str = Field(..., description="ISO 8601, inclusive.")
    until: str = Field(..., description="ISO 8601, exclusive.")


class Interval(ResponseModel):
    """A value with its interval (null where there is nothing to estimate from)."""

    value: float | None
    lower: float | None
    upper: float | None


class Quote(ResponseModel):
    id: int = Field(..., description="The feedback item quoted.")
    text: str
