"""Audit trail: no foreign key from audit_entity to audit_log

`append` writes an entry's entity rows with the entry, in one transaction, and nothing else
writes them; `verify` finds an entity row whose entry is missing. The key's check, a lookup
per row, cost PostgreSQL more than the rest of an entry's insert: 15.6 µs an entry with it,
6.8 without (and an audit entry is written for every read).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('audit_entity', schema=None) as batch_op:
        batch_op.drop_constraint('fk_audit_entity_seq_audit_log', type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('audit_entity', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_audit_entity_seq_audit_log', 'audit_log', ['seq'],
                                    ['seq'])
