"""Audit trail: each recorder's progress, stored with the entries it appends

A recorder process writes, in the transaction that stores a batch of entries, how many of
the entries it was sent are done. A server whose recorder ended between that commit and its
acknowledgement reads the number here and does not send those entries to the next recorder:
each entry is stored once.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'audit_progress',
        sa.Column('recorder', sa.String(length=64), nullable=False),
        sa.Column('done', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('recorder', name=op.f('pk_audit_progress')),
    )


def downgrade() -> None:
    op.drop_table('audit_progress')
