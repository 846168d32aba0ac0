"""Auth: page sessions signed out before their token expired

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yilian.kit.dbtypes

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'auth_ended_session',
        sa.Column('jti', sa.String(length=64), nullable=False),
        sa.Column('expires', yilian.kit.dbtypes.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('jti', name=op.f('pk_auth_ended_session')),
    )


def downgrade() -> None:
    op.drop_table('auth_ended_session')
