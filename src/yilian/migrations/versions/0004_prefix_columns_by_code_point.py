"""FHIR search: text searched by prefix ordered by code point on PostgreSQL (COLLATE "C")

A prefix (`family=Zh`, `url:below=`, `:text=`) is a range of the column's index on both
databases (kit.sqlhints.starts_with). SQLite compares text by code point already; PostgreSQL
15 does only under collation "C", and otherwise reads no index for LIKE 'zh%' at all.
Rebuilds the three columns' indexes on PostgreSQL; nothing to do on SQLite.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (('idx_string', 'value_norm', 200, False), ('idx_token', 'text', 400, True),
            ('idx_uri', 'uri', 800, False))


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, column, length, nullable in _COLUMNS:
        op.alter_column(table, column, type_=sa.String(length, collation='C'),
                        existing_type=sa.String(length), existing_nullable=nullable)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, column, length, nullable in _COLUMNS:
        op.alter_column(table, column, type_=sa.String(length, collation='default'),
                        existing_type=sa.String(length, collation='C'),
                        existing_nullable=nullable)
