"""Column mapping from an input file's columns onto the data dictionary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from service.domain import FeedbackIn

DICTIONARY_FIELDS = tuple(FeedbackIn.model_fields)
ATTRIBUTE_PREFIX = "attr."


class MappingError(ValueError):
    pass


@dataclass(frozen=True)
class ColumnMapping:
    """``columns`` maps a dictionary field to the input column that holds it.

    Input columns that are neither mapped nor dictionary fields become ``attributes``
    (segment fields such as ``age_group``); with ``extra_as_attributes`` off they are
    errors unless listed in ``ignore`` (the API's strict mode). Columns
    named ``attr.<name>`` always do. ``defaults`` fill fields the file does not carry
    (for example ``source: tmall`` for a whole export).
    """

    columns: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    extra_as_attributes: bool = True
    ignore: tuple[str, ...] = ()

    def __post_init__(self):
        for target in list(self.columns) + list(self.defaults):
            if target not in DICTIONARY_FIELDS:
                raise MappingError(
                    f"unknown field {target!r}; fields are: {', '.join(DICTIONARY_FIELDS)}"
                )

    @classmethod
    def from_pairs(
        cls,
        pairs: list[str] | None = None,
        defaults: list[str] | None = None,
        file: Path | None = None,
        **kw,
    ) -> ColumnMapping:
        columns: dict[str, str] = {}
        dflt: dict[str, Any] = {}
        ignore: tuple[str, ...] = ()
        if file is not None:
            data = yaml.safe_load(Path(file).read_text(encoding="utf-8")) or {}
            if not isinstance(data, dict):
                raise MappingError(f"{file}: expected a mapping with 'columns' and 'defaults'")
            unknown = set(data) - {"columns", "defaults", "ignore", "extra_as_attributes"}
            if unknown:
                raise MappingError(f"{file}: unknown keys {sorted(unknown)}")
            columns.update(data.get("columns") or {})
            dflt.update(data.get("defaults") or {})
            ignore = tuple(data.get("ignore") or ())
            kw.setdefault("extra_as_attributes", data.get("extra_as_attributes", True))
        for kind, items, target in (("--map", pairs, columns), ("--set", defaults, dflt)):
            for p in items or []:
                if "=" not in p:
                    raise MappingError(f"{kind} {p!r}: expected FIELD=VALUE")
                k, v = p.split("=", 1)
                target[k.strip()] = v.strip()
        return cls(columns=columns, defaults=dflt, ignore=ignore, **kw)

    def apply(self, record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Return ``(payload, origin)``: the dictionary payload and, per field, its input column."""
        payload: dict[str, Any] = dict(self.defaults)
        origin: dict[str, str] = {}
        used = set(self.ignore) | set(self.columns.values())
        for target, column in self.columns.items():
            if column in record:
                payload[target] = record[column]
                origin[target] = column
        attributes: dict[str, Any] = {}
        for column, value in record.items():
            if column in used:
                continue
            if column.startswith(ATTRIBUTE_PREFIX):
                attributes[column[len(ATTRIBUTE_PREFIX) :]] = value
            elif column in DICTIONARY_FIELDS:
                if column not in self.columns:  # a mapped field wins over a same-named column
                    payload[column] = value
                    origin[column] = column
            elif self.extra_as_attributes:
                attributes[column] = value
            else:  # strict: let validation name the unknown field
                payload[column] = value
        if attributes:
            payload["_extra_attributes"] = attributes
        return payload, origin
