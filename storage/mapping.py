"""Entities ↔ database rows and cache JSON, field by field, written once.

The tables' columns and the cached JSON objects are named as the entities' fields, so one
mapping serves both: a field added to `Snippet` reaches the insert, the row it is read back
from and the cache without being listed again in each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Row

T = TypeVar("T")

_FROM_JSON: dict[str, Callable[[Any], Any]] = {
    "UUID": UUID,
    "datetime": datetime.fromisoformat,
    "int": int,
    "str": str,
    "bool": bool,
    "tuple[str, ...]": tuple,
}


_NAMES: dict[type[Any], tuple[str, ...]] = {}
_READERS: dict[type[Any], tuple[tuple[str, Callable[[Any], Any]], ...]] = {}


def field_names(entity: type[Any]) -> tuple[str, ...]:
    names = _NAMES.get(entity)
    if names is None:
        names = _NAMES[entity] = tuple(field.name for field in dataclasses.fields(entity))
    return names


def _json_readers(entity: type[Any]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    readers = _READERS.get(entity)
    if readers is None:
        # The entities' modules use postponed annotations: each field's type is its name.
        readers = _READERS[entity] = tuple(
            (field.name, _FROM_JSON[str(field.type)]) for field in dataclasses.fields(entity)
        )
    return readers


def values_of(entity: Any) -> dict[str, Any]:
    """The entity's fields, by name: the values of a row to insert."""
    return {name: getattr(entity, name) for name in field_names(type(entity))}


def from_row(entity: type[T], row: Row[Any], **computed: Any) -> T:
    """The entity from a row holding (at least) a column per field but the `computed` ones."""
    return from_columns(entity, row._mapping, **computed)


class Columns(Protocol):
    """A row's values by column name: SQLAlchemy's `Row._mapping` or an asyncpg `Record`."""

    def __getitem__(self, name: str, /) -> Any: ...


def from_columns(entity: type[T], values: Columns, **computed: Any) -> T:
    """`from_row` for a row's values by column name (an asyncpg `Record` too)."""
    return entity(
        **{name: values[name] for name in field_names(entity) if name not in computed},
        **computed,
    )


def columns_for(table: sa.Table, entity: type[Any]) -> tuple[sa.Column[Any], ...]:
    """The table's columns that hold the entity's fields, in field order."""
    return tuple(table.c[name] for name in field_names(entity))


def to_json(entity: Any) -> dict[str, Any]:
    """The entity as a JSON object: UUIDs as text, times in ISO 8601."""
    return {name: _jsonable(value) for name, value in values_of(entity).items()}


def from_json(entity: type[T], data: Mapping[str, Any]) -> T:
    """The entity from `to_json`'s object; `KeyError`, `ValueError` or `TypeError` if damaged."""
    return entity(**{name: read(data[name]) for name, read in _json_readers(entity)})


def _jsonable(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
