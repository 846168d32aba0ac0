"""Search: one token index for system|code and system|, and no hash of the pair

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # (hash_sys, hash_code, resource_pk) answers system|code (both hashes) and system| (the
    # first): the pair's own hash and its index were a third index entry on every token row.
    with op.batch_alter_table('idx_token') as batch_op:
        batch_op.drop_index('ix_idx_token_sys_code')
        batch_op.drop_index('ix_idx_token_sys')
        batch_op.drop_column('hash_sys_code')
        batch_op.create_index('ix_idx_token_sys', ['hash_sys', 'hash_code', 'resource_pk'],
                              unique=False)


def downgrade() -> None:
    # The pair's hash is not derivable in SQL: rebuild the index rows (`yilian search
    # reindex`) after downgrading.
    with op.batch_alter_table('idx_token') as batch_op:
        batch_op.drop_index('ix_idx_token_sys')
        batch_op.add_column(sa.Column('hash_sys_code', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.create_index('ix_idx_token_sys', ['hash_sys', 'resource_pk'], unique=False)
        batch_op.create_index('ix_idx_token_sys_code', ['hash_sys_code', 'resource_pk'],
                              unique=False)
