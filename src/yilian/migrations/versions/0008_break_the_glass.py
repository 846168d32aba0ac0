"""Access: emergency openings of a patient's records ("break the glass")

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yilian.kit.dbtypes

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'auth_emergency',
        sa.Column('username', sa.String(length=100), nullable=False),
        sa.Column('patient', sa.String(length=64), nullable=False),
        sa.Column('opened', yilian.kit.dbtypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column('expires', yilian.kit.dbtypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('username', 'patient', 'opened', name=op.f('pk_auth_emergency')),
    )


def downgrade() -> None:
    op.drop_table('auth_emergency')
