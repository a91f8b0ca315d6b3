"""What the response models share."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, PlainSerializer

# A datetime the route hands over as a ``datetime`` object: written as ``isoformat()`` (``+00:00``,
# as FastAPI's encoder wrote it before the route had a model), not pydantic's ``Z``.
IsoDatetime = Annotated[
    datetime, PlainSerializer(lambda v: v.isoformat(), return_type=str, when_used="json")
]


class ResponseModel(BaseModel):
    """A response body. The routes return plain dicts and are declared with
    ``response_model_exclude_unset=True`` (``service.api.routing.DictRouter``): a key the dict lacks
    stays absent (it is not written as null), so a model documents the body without changing it."""

    model_config = ConfigDict(extra="ignore")


def fields_of(cls: type) -> dict[str, Any]:
    """The fields of the dataclass ``cls`` as ``pydantic.create_model`` takes them (each one
    required, of its annotated type): a response model that answers with such a dataclass's
    dict is derived from it rather than written again."""
    hints = get_type_hints(cls)
    return {f.name: (hints[f.name], ...) for f in dataclasses.fields(cls)}
