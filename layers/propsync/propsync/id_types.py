"""The id types of a project, and which of them are hard or soft. Pure: no I/O.

A project knows a fixed set of id types (``customer_ids`` keys, an import
mapping's ``to_id``). A HARD id type has one value per customer (``registered``);
a SOFT one has many (``cookie``: every browser a customer used). Ids of a type
the project does not know are refused, so a typo such as ``registred`` cannot
quietly create customers apart from the ones ``registered`` names.

A project starts with :data:`DEFAULT_ID_TYPES`; an administrator adds more
(``propsync set-id-type``). An id type is only ever added:
its kind cannot change and it cannot be removed, because customers already
hold ids of it (docs/DECISIONS.md: "Id types are set per project ...").
The project item stores them as :meth:`IdTypes.to_item` (store.access).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from propsync.errors import (
    IdTypeKindError,
    InvalidCustomerIdsError,
    UnknownIdTypeError,
    shown,
)
from propsync.limits import MAX_ID_TYPE_CHARS

HARD = "hard"
SOFT = "soft"
KINDS = (HARD, SOFT)
SET_ID_TYPE_COMMAND = "propsync set-id-type"

_ID_TYPE = re.compile(r"[A-Za-z0-9_.\-]+")
# An error names at most this many id types (a request may send thousands of
# unknown ones; a project may know many).
_LISTED = 20


# check_id_type_name's rule as JSON schema, for the request and mapping
# schemas. Not an anchored pattern: Python's validators match `$` before a
# final newline, so "registered\n" would pass one.
ID_TYPE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_ID_TYPE_CHARS,
    "not": {"pattern": "[^A-Za-z0-9_.\\-]"},
}


def check_id_type_name(id_type: Any) -> str:
    """``id_type`` if it may name an id type, else InvalidCustomerIdsError.

    The one rule for id type names (identity.validate_customer_ids words the
    same sentence): they are DynamoDB key parts and attribute names."""
    if (
        not isinstance(id_type, str)
        or len(id_type) > MAX_ID_TYPE_CHARS
        or not _ID_TYPE.fullmatch(id_type)
    ):
        raise InvalidCustomerIdsError(
            f"id type {shown(id_type)} is not allowed: use 1 to {MAX_ID_TYPE_CHARS} letters, "
            "digits, '_', '.' or '-'"
        )
    return id_type


@dataclass(frozen=True)
class IdTypes:
    """The id types one project knows, by kind."""

    hard: frozenset[str]
    soft: frozenset[str]

    def __post_init__(self) -> None:
        for id_type in self.hard | self.soft:
            check_id_type_name(id_type)
        both = self.hard & self.soft
        if both:
            raise ValueError(f"id types {sorted(both)} cannot be both hard and soft")

    @property
    def known(self) -> tuple[str, ...]:
        """Every id type of the project, sorted."""
        return tuple(sorted(self.hard | self.soft))

    def is_hard(self, id_type: str) -> bool:
        return id_type in self.hard

    def kind(self, id_type: str) -> str | None:
        """``"hard"``, ``"soft"``, or None for an id type the project does not know."""
        if id_type in self.hard:
            return HARD
        return SOFT if id_type in self.soft else None

    def unknown_problem(self, id_types: Iterable[str]) -> str | None:
        """Why ``id_types`` are refused (the unknown ones named), None if all are known."""
        unknown = self._unknown(id_types)
        return _unknown_sentence(unknown, self) if unknown else None

    def check(self, ids: Mapping[str, str]) -> None:
        """UnknownIdTypeError unless the project knows every id type of ``ids``
        (``customer_ids`` that passed identity.validate_customer_ids)."""
        unknown = self._unknown(ids)
        if unknown:
            raise UnknownIdTypeError(_unknown_sentence(unknown, self))

    def _unknown(self, id_types: Iterable[str]) -> list[str]:
        return sorted(set(id_types) - self.hard - self.soft)

    def adding(self, id_type: str, *, hard: bool) -> IdTypes:
        """These id types with ``id_type`` added (the same ones if it is there
        already with that kind); IdTypeKindError if it is there with the other."""
        check_id_type_name(id_type)
        wanted = HARD if hard else SOFT
        current = self.kind(id_type)
        if current == wanted:
            return self
        if current is not None:
            raise IdTypeKindError(
                f"id type {shown(id_type)} is already {current}; the kind of an id type "
                f"cannot change: {_WHY_KINDS_STAY[current]}"
            )
        if hard:
            return IdTypes(hard=self.hard | {id_type}, soft=self.soft)
        return IdTypes(hard=self.hard, soft=self.soft | {id_type})

    def to_item(self) -> dict[str, str]:
        """The stored form: id type -> ``"hard"`` or ``"soft"``."""
        return {id_type: HARD if id_type in self.hard else SOFT for id_type in self.known}

    @classmethod
    def from_item(cls, stored: Mapping[str, str]) -> IdTypes:
        """The inverse of :meth:`to_item`."""
        unknown = {kind for kind in stored.values() if kind not in KINDS}
        if unknown:
            raise ValueError(f"stored id type kinds {sorted(unknown)} are not {KINDS}")
        return cls(
            hard=frozenset(t for t, kind in stored.items() if kind == HARD),
            soft=frozenset(t for t, kind in stored.items() if kind == SOFT),
        )

    def described(self) -> str:
        """``cookie (soft), registered (hard)``: every id type with its kind."""
        return _listed([f"{t} ({self.kind(t)})" for t in self.known])


_WHY_KINDS_STAY = {
    SOFT: "customers may already hold several values of it, and a hard id type allows one",
    HARD: "clients rely on a customer having at most one value of it",
}

DEFAULT_ID_TYPES = IdTypes(hard=frozenset({"registered"}), soft=frozenset({"cookie"}))


def _unknown_sentence(unknown: list[str], id_types: IdTypes) -> str:
    return (
        f"id type{'s' if len(unknown) > 1 else ''} {_listed([shown(t) for t in unknown])} "
        f"{'are' if len(unknown) > 1 else 'is'} not known to this project; "
        f"known id types: {id_types.described()}; "
        f"an administrator adds id types with `{SET_ID_TYPE_COMMAND}`"
    )


def _listed(items: list[str]) -> str:
    more = len(items) - _LISTED
    listed = ", ".join(items[:_LISTED])
    return f"{listed} and {more} more" if more > 0 else listed
