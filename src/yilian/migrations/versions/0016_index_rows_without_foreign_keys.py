"""Search: no foreign key from the index tables to resource

The store writes a resource's index rows in the transaction that writes the resource, and
deletes them itself when the resource is written again; resource rows are never deleted, so
the keys' ON DELETE CASCADE never acted. PostgreSQL checked each key with a lookup per index
row (9.5 rows a resource in the Synthea bundles): ingestion in process went from 3,131-3,147
to 4,348-4,486 resources/s without them. On SQLite the tables are rebuilt (batch mode): a
one-time copy of the index rows.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ('idx_string', 'idx_token', 'idx_reference', 'idx_date', 'idx_number',
           'idx_quantity', 'idx_uri')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'fk_{table}_resource_pk_resource', type_='foreignkey')


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(f'fk_{table}_resource_pk_resource', 'resource',
                                        ['resource_pk'], ['pk'], ondelete='CASCADE')
