"""Search: the reference url index holds only references that have a url

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HAS_URL = sa.text("url IS NOT NULL")


def upgrade() -> None:
    # Resolved references (Type/id, the great majority) have no url: every write of one
    # added a NULL entry that no search reads.
    op.drop_index('ix_idx_reference_url', table_name='idx_reference')
    op.create_index('ix_idx_reference_url', 'idx_reference', ['url'],
                    sqlite_where=_HAS_URL, postgresql_where=_HAS_URL)


def downgrade() -> None:
    op.drop_index('ix_idx_reference_url', table_name='idx_reference')
    op.create_index('ix_idx_reference_url', 'idx_reference', ['url'])
