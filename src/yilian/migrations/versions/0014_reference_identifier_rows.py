"""Search: references by identifier (`:identifier`) have token rows of their own

No schema change: `subject:identifier=system|value` is answered by token rows under
`{param}:identifier`, which extraction writes beside the reference rows since this revision.
Resources stored before have none until `yilian search reindex` (the migration does not
reindex: on a hospital's volume that takes a while, and the server may serve meanwhile).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25 08:00:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WARNING = ('References are now searchable by their identifier (`:identifier`): run '
           '`yilian search reindex` so that resources written before this upgrade are found '
           'by it.')


def upgrade() -> None:
    if op.get_bind().execute(sa.text('SELECT 1 FROM idx_reference LIMIT 1')).first():
        logging.getLogger('alembic.runtime.migration').warning(WARNING)


def downgrade() -> None:
    pass  # the rows are ordinary token rows; a reindex after downgrading drops them
