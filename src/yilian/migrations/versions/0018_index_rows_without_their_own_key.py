"""Search: the index tables lose their own key (the `id` column)

Nothing looks an index row up but by the columns its indexes cover (a resource's rows by
`resource_pk`, searches by values); the serial key cost PostgreSQL a sequence step and a
unique index entry for every row (9.5 rows a resource in the Synthea bundles): the indexing
overhead in process, four rounds side by side, 70-76% with it, 65-67% without. SQLite keeps
numbering the rows itself (rowid); its tables are rebuilt (batch mode), a one-time copy of
the index rows.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ('idx_string', 'idx_token', 'idx_reference', 'idx_date', 'idx_number',
           'idx_quantity', 'idx_uri')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('id')


def downgrade() -> None:
    for table in _TABLES:
        if op.get_bind().dialect.name == 'postgresql':
            # A serial key numbers the rows already there.
            op.execute(f'ALTER TABLE {table} ADD COLUMN id BIGSERIAL '
                       f'CONSTRAINT pk_{table} PRIMARY KEY')
            continue
        # SQLite: an INTEGER PRIMARY KEY is the rowid, given to each row as it is copied.
        with op.batch_alter_table(table, schema=None, recreate='always') as batch_op:
            batch_op.add_column(sa.Column('id', sa.Integer(), nullable=False))
            batch_op.create_primary_key(f'pk_{table}', ['id'])
