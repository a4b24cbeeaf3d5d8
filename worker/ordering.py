"""An ORDER BY written once and read twice: as SQL for PostgreSQL, and as a sort key in
Python for the pure code that must agree with it (the claim order of SPEC §6 is the
user: ``worker.schedule.CLAIM_ORDER`` is the claim's ORDER BY in ``worker.scheduler``
and the order of ``worker.schedule.choose``, which the schedule's simulations use).

A term is a small expression over one row (``players AS p``): columns, the age of a
timestamp, named parameters, numbers, comparisons, ``OR``, ``NOT``, products, powers
and ``CASE WHEN``. Each renders itself to SQL and evaluates itself on a Python row
(any object with the columns as attributes, timestamps as epoch seconds), with SQL's
NULL rules (``None``; ``OR`` is three-valued). :class:`Key` adds the direction and
where NULLs go, spelled out so that neither side relies on a default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Value = float | bool | None


@dataclass(frozen=True, slots=True)
class Env:
    """What a row is evaluated against: the time (epoch seconds) and the parameters."""

    now: float
    params: Mapping[str, float]


class Term(Protocol):
    def sql(self) -> str: ...

    def value(self, row: Any, env: Env) -> Value: ...


@dataclass(frozen=True, slots=True)
class Column:
    """A column of ``p``; ``attr`` names it on the Python row when it differs."""

    name: str
    attr: str | None = None

    def sql(self) -> str:
        return f"p.{self.name}"

    def value(self, row: Any, env: Env) -> Value:
        found: Value = getattr(row, self.attr or self.name)
        return found


@dataclass(frozen=True, slots=True)
class Age:
    """Seconds from a timestamp column to now."""

    column: Column

    def sql(self) -> str:
        return f"extract(epoch FROM now() - {self.column.sql()})::float8"

    def value(self, row: Any, env: Env) -> Value:
        at = self.column.value(row, env)
        return None if at is None else env.now - float(at)


@dataclass(frozen=True, slots=True)
class Param:
    name: str

    def sql(self) -> str:
        return f":{self.name}"

    def value(self, row: Any, env: Env) -> Value:
        return env.params[self.name]


@dataclass(frozen=True, slots=True)
class Number:
    number: float

    def sql(self) -> str:
        return repr(float(self.number))

    def value(self, row: Any, env: Env) -> Value:
        return self.number


@dataclass(frozen=True, slots=True)
class Compare:
    left: Term
    op: Literal["<=", ">="]
    right: Term

    def sql(self) -> str:
        return f"({self.left.sql()} {self.op} {self.right.sql()})"

    def value(self, row: Any, env: Env) -> Value:
        a, b = self.left.value(row, env), self.right.value(row, env)
        if a is None or b is None:
            return None
        return a <= b if self.op == "<=" else a >= b


@dataclass(frozen=True, slots=True)
class IsNull:
    term: Term

    def sql(self) -> str:
        return f"({self.term.sql()} IS NULL)"

    def value(self, row: Any, env: Env) -> Value:
        return self.term.value(row, env) is None


@dataclass(frozen=True, slots=True)
class AnyOf:
    """``OR``: true if any is true, else unknown (None) if any is unknown."""

    terms: tuple[Term, ...]

    def sql(self) -> str:
        return "(" + " OR ".join(t.sql() for t in self.terms) + ")"

    def value(self, row: Any, env: Env) -> Value:
        values = [t.value(row, env) for t in self.terms]
        if any(v is True for v in values):
            return True
        return None if any(v is None for v in values) else False


@dataclass(frozen=True, slots=True)
class Not:
    term: Term

    def sql(self) -> str:
        return f"(NOT {self.term.sql()})"

    def value(self, row: Any, env: Env) -> Value:
        v = self.term.value(row, env)
        return None if v is None else not v


@dataclass(frozen=True, slots=True)
class Times:
    left: Term
    right: Term

    def sql(self) -> str:
        return f"({self.left.sql()} * {self.right.sql()})"

    def value(self, row: Any, env: Env) -> Value:
        a, b = self.left.value(row, env), self.right.value(row, env)
        return None if a is None or b is None else float(a) * float(b)


@dataclass(frozen=True, slots=True)
class Power:
    base: Term
    exponent: Term

    def sql(self) -> str:
        return f"power({self.base.sql()}, {self.exponent.sql()})"

    def value(self, row: Any, env: Env) -> Value:
        a, b = self.base.value(row, env), self.exponent.value(row, env)
        return None if a is None or b is None else math.pow(float(a), float(b))


@dataclass(frozen=True, slots=True)
class When:
    """``CASE WHEN condition THEN term END``: NULL unless the condition is true."""

    condition: Term
    then: Term

    def sql(self) -> str:
        return f"CASE WHEN {self.condition.sql()} THEN {self.then.sql()} END"

    def value(self, row: Any, env: Env) -> Value:
        return self.then.value(row, env) if self.condition.value(row, env) is True else None


@dataclass(frozen=True, slots=True)
class Key:
    """One key of an ORDER BY: ascending unless ``descending``, NULLs last unless
    ``nulls_first`` (in either direction: PostgreSQL's defaults differ by direction,
    so both are always written out)."""

    term: Term
    descending: bool = False
    nulls_first: bool = False

    def sql(self) -> str:
        direction = "DESC" if self.descending else "ASC"
        return f"{self.term.sql()} {direction} NULLS {'FIRST' if self.nulls_first else 'LAST'}"

    def sort_key(self, row: Any, env: Env) -> tuple[int, float]:
        v = self.term.value(row, env)
        if v is None:
            return (0 if self.nulls_first else 2, 0.0)
        number = float(v)  # false < true, as in SQL
        return (1, -number if self.descending else number)


@dataclass(frozen=True, slots=True)
class Order:
    keys: tuple[Key, ...]

    def sql(self) -> str:
        return ",\n".join(key.sql() for key in self.keys)

    def sort_key(self, row: Any, env: Env) -> tuple[tuple[int, float], ...]:
        return tuple(key.sort_key(row, env) for key in self.keys)
