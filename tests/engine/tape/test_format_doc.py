"""docs/tape-format.md describes every table and column the writer creates, so that people reading a tape
with their own tools (sqlite3, pandas) are not misled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.tape import schema

DOC = (Path(__file__).resolve().parents[3] / "docs" / "tape-format.md").read_text(encoding="utf-8")


def _table_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.splitlines():
        m = re.match(r"\| `(\w+)` \|", line)
        if m:
            rows[m.group(1)] = line
    return rows


@pytest.mark.parametrize("table", sorted(schema.TABLES))
def test_every_column_of_every_table_is_documented(table):
    rows = _table_rows()
    assert table in rows, f"docs/tape-format.md has no row for table {table!r}"
    named = set(re.findall(r"`(\w+)`", rows[table]))
    if "as `summaries`" in rows[table]:  # "then as `summaries`": the summary columns, described once
        named |= set(re.findall(r"`(\w+)`", rows["summaries"]))
    missing = [c for c in schema.columns(table) if c not in named]
    assert not missing, f"docs/tape-format.md: table {table!r} does not describe its columns {missing}"


def test_the_doc_describes_no_table_the_writer_does_not_create():
    event_columns = {"seq", "kind", "iteration", "phase", "depth", "t", "node", "tensor", "ref", "stack",
                     "ntensors"}  # the chunk layout's own table, not a SQLite table
    extra = set(_table_rows()) - set(schema.TABLES) - event_columns
    assert not extra, f"docs/tape-format.md describes tables that do not exist: {sorted(extra)}"
