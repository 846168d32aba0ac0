"""Sign-in: OAuth clients, authorization codes, refresh tokens and used client assertions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yilian.kit.dbtypes

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_STAMP = yilian.kit.dbtypes.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'auth_client',
        sa.Column('client_id', sa.String(length=100), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('redirect_uris', sa.Text(), nullable=False),
        sa.Column('scope', sa.Text(), nullable=False),
        sa.Column('auth_method', sa.String(length=40), nullable=False),
        sa.Column('jwks', sa.Text(), nullable=True),
        sa.Column('created', _STAMP, nullable=False),
        sa.PrimaryKeyConstraint('client_id', name=op.f('pk_auth_client')),
    )
    op.create_table(
        'auth_code',
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=100), nullable=False),
        sa.Column('user_pk', _ID, nullable=False),
        sa.Column('redirect_uri', sa.Text(), nullable=False),
        sa.Column('scope', sa.Text(), nullable=False),
        sa.Column('code_challenge', sa.String(length=128), nullable=False),
        sa.Column('code_challenge_method', sa.String(length=10), nullable=False),
        sa.Column('expires', _STAMP, nullable=False),
        sa.ForeignKeyConstraint(['user_pk'], ['auth_user.pk'],
                                name=op.f('fk_auth_code_user_pk_auth_user'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('code_hash', name=op.f('pk_auth_code')),
    )
    op.create_table(
        'auth_refresh',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=100), nullable=False),
        sa.Column('user_pk', _ID, nullable=False),
        sa.Column('scope', sa.Text(), nullable=False),
        sa.Column('expires', _STAMP, nullable=False),
        sa.Column('revoked', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['user_pk'], ['auth_user.pk'],
                                name=op.f('fk_auth_refresh_user_pk_auth_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_auth_refresh')),
    )
    op.create_table(
        'auth_assertion',
        sa.Column('key', sa.String(length=300), nullable=False),
        sa.Column('expires', _STAMP, nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_auth_assertion')),
    )


def downgrade() -> None:
    op.drop_table('auth_assertion')
    op.drop_table('auth_refresh')
    op.drop_table('auth_code')
    op.drop_table('auth_client')
