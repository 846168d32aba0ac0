"""Inpatients: the census of closed days

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTS = ('in_hospital', 'admissions', 'discharges', 'los_days', 'moves', 'from_other_ward',
           'from_other_department', 'from_other_campus', 'from_other_hospital')


def upgrade() -> None:
    op.create_table(
        'inpatient_census_day',
        sa.Column('hospital_id', sa.String(length=64), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('campus_id', sa.String(length=64), nullable=False),
        sa.Column('department_id', sa.String(length=64), nullable=False),
        sa.Column('ward_id', sa.String(length=64), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS),
        sa.PrimaryKeyConstraint('hospital_id', 'day', 'campus_id', 'department_id', 'ward_id',
                                name=op.f('pk_inpatient_census_day')),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_inpatient_census_day_campus', 'inpatient_census_day',
                    ['campus_id', 'day'])
    op.create_index('ix_inpatient_census_day_day', 'inpatient_census_day', ['day'])
    op.create_table(
        'inpatient_census_state',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('through', sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_inpatient_census_state')),
    )
    op.bulk_insert(sa.table('inpatient_census_state', sa.column('id', sa.Integer()),
                            sa.column('through', sa.Date())), [{'id': 1, 'through': None}])


def downgrade() -> None:
    op.drop_table('inpatient_census_state')
    op.drop_table('inpatient_census_day')
