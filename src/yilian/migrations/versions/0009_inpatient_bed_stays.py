"""Inpatients: the bed-stay movement record, the bed register and the inpatient numbers

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yilian.kit.dbtypes

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text('ended IS NULL')


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
    stamp = yilian.kit.dbtypes.UtcDateTime(timezone=True)
    op.create_table(
        'inpatient_bed_stay',
        sa.Column('pk', big_id, autoincrement=True, nullable=False),
        sa.Column('encounter_id', sa.String(length=64), nullable=False),
        sa.Column('patient_id', sa.String(length=64), nullable=False),
        sa.Column('hospital_id', sa.String(length=64), nullable=False),
        sa.Column('campus_id', sa.String(length=64), nullable=False),
        sa.Column('department_id', sa.String(length=64), nullable=False),
        sa.Column('ward_id', sa.String(length=64), nullable=False),
        sa.Column('bed_id', sa.String(length=64), nullable=False),
        sa.Column('admitted', stamp, nullable=False),
        sa.Column('began', stamp, nullable=False),
        sa.Column('ended', stamp, nullable=True),
        sa.Column('came_by', sa.String(length=10), nullable=False),
        sa.Column('left_by', sa.String(length=10), nullable=True),
        sa.Column('expected_discharge', sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint('pk', name=op.f('pk_inpatient_bed_stay')),
    )
    op.create_index('uq_inpatient_bed_stay_open_bed', 'inpatient_bed_stay', ['bed_id'],
                    unique=True, sqlite_where=_OPEN, postgresql_where=_OPEN)
    op.create_index('uq_inpatient_bed_stay_open_patient', 'inpatient_bed_stay', ['patient_id'],
                    unique=True, sqlite_where=_OPEN, postgresql_where=_OPEN)
    op.create_index('ix_inpatient_bed_stay_encounter', 'inpatient_bed_stay', ['encounter_id'])
    op.create_index('ix_inpatient_bed_stay_ended', 'inpatient_bed_stay', ['ended'])
    op.create_index('ix_inpatient_bed_stay_campus_open', 'inpatient_bed_stay', ['campus_id'],
                    sqlite_where=_OPEN, postgresql_where=_OPEN)
    op.create_table(
        'inpatient_bed',
        sa.Column('bed_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('parent_id', sa.String(length=64), nullable=True),
        sa.Column('ward_id', sa.String(length=64), nullable=True),
        sa.Column('campus_id', sa.String(length=64), nullable=True),
        sa.Column('hospital_id', sa.String(length=64), nullable=True),
        sa.Column('department_id', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint('bed_id', name=op.f('pk_inpatient_bed')),
    )
    op.create_index('ix_inpatient_bed_campus', 'inpatient_bed', ['campus_id'])
    op.create_index('ix_inpatient_bed_ward', 'inpatient_bed', ['ward_id'])
    op.create_index('ix_inpatient_bed_parent', 'inpatient_bed', ['parent_id'])
    op.create_table(
        'inpatient_counter',
        sa.Column('hospital_id', sa.String(length=64), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('last', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('hospital_id', 'year', name=op.f('pk_inpatient_counter')),
    )


def downgrade() -> None:
    op.drop_table('inpatient_counter')
    op.drop_table('inpatient_bed')
    op.drop_table('inpatient_bed_stay')
