"""Audit: the append-only, hash-chained audit trail

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yilian.kit.dbtypes

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'audit_log',
        sa.Column('seq', _ID, autoincrement=False, nullable=False),
        sa.Column('recorded', yilian.kit.dbtypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('subtype', sa.String(length=40), nullable=False),
        sa.Column('outcome', sa.Integer(), nullable=False),
        sa.Column('entry', sa.Text(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_log')),
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_recorded', ['recorded'], unique=False)
        batch_op.create_index('ix_audit_log_actor', ['actor', 'seq'], unique=False)
    op.create_table(
        'audit_entity',
        sa.Column('seq', _ID, nullable=False),
        sa.Column('reference', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['seq'], ['audit_log.seq'],
                                name=op.f('fk_audit_entity_seq_audit_log')),
        sa.PrimaryKeyConstraint('seq', 'reference', name=op.f('pk_audit_entity')),
    )
    with op.batch_alter_table('audit_entity', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entity_reference', ['reference', 'seq'], unique=False)
    op.create_table(
        'audit_head',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head')),
    )
    # The chain's head exists from the start: the first appends of several processes then
    # queue on its row lock instead of racing to create it.
    op.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64
                       + "')"))


def downgrade() -> None:
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_entity', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entity_reference')
    op.drop_table('audit_entity')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_actor')
        batch_op.drop_index('ix_audit_log_recorded')
    op.drop_table('audit_log')
