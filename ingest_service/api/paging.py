"""Keyset paging shared by the list resources (alerts, audit, dead letters)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString

import psycopg
from psycopg import sql

Filter = tuple[LiteralString, object]
"""A condition with at most one ``%s`` and its value; left out when the value is None."""


def newest_first(
    conn: psycopg.Connection[Any],
    select: LiteralString,
    filters: Sequence[Filter],
    before: int | None,
    limit: int,
) -> tuple[list[tuple[Any, ...]], bool]:
    """One page, newest ``id`` first: the rows, and whether there is a next page.

    ``select`` is ``SELECT ... FROM table``; the page continues below ``before`` (keyset
    paging on ``id``: stable while rows are added, unlike OFFSET).
    """
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[object] = []
    for condition, value in (*filters, ("id < %s", before)):
        if value is None:
            continue
        conditions.append(sql.SQL(condition))
        if "%s" in condition:
            params.append(value)
    query = sql.SQL("{} WHERE {} ORDER BY id DESC LIMIT %s").format(
        sql.SQL(select), sql.SQL(" AND ").join(conditions)
    )
    rows = conn.execute(query, [*params, limit + 1]).fetchall()
    return rows[:limit], len(rows) > limit
