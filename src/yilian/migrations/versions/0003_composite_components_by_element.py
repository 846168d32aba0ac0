"""FHIR search: composite parameters as their components' typed rows, grouped by element

The hashes of idx_composite matched equality only; a component's rows now go to its type's
table with the element's ordinal in `grp`, so prefixes and units work on components
(search/composite.py). Data written before needs `yilian search reindex` for composites
over elements (Observation.component, useContext, Group.characteristic...); those over the
resource itself (Observation code-value-quantity) use rows that exist already.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 04:00:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ('idx_string', 'idx_token', 'idx_reference', 'idx_date', 'idx_number',
           'idx_quantity', 'idx_uri')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('grp', sa.Integer(), nullable=True))
    had_rows = op.get_bind().execute(sa.text('SELECT 1 FROM idx_composite LIMIT 1')).first()
    with op.batch_alter_table('idx_composite', schema=None) as batch_op:
        batch_op.drop_index('ix_idx_composite_resource')
        batch_op.drop_index('ix_idx_composite_hash')
    op.drop_table('idx_composite')
    if had_rows is not None:
        logging.getLogger('alembic.runtime.migration').warning(
            'Composite search parameters are indexed anew: run `yilian search reindex` so '
            'that resources written before this upgrade are found by them.')


def downgrade() -> None:
    op.create_table(
        'idx_composite',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('res_type', sa.String(length=64), nullable=False),
        sa.Column('param', sa.String(length=100), nullable=False),
        sa.Column('hash', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['resource_pk'], ['resource.pk'],
                                name=op.f('fk_idx_composite_resource_pk_resource'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_idx_composite')),
    )
    with op.batch_alter_table('idx_composite', schema=None) as batch_op:
        batch_op.create_index('ix_idx_composite_hash', ['hash', 'resource_pk'], unique=False)
        batch_op.create_index('ix_idx_composite_resource', ['resource_pk'], unique=False)
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('grp')
