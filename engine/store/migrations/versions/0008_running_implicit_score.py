"""the implicit score kept running on the lead, explicit ledger rows indexed (batch scoring
without reading whole ledgers)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every existing lead: its first scored event recomputes it from the ledger.
    with op.batch_alter_table('lead') as batch:
        batch.add_column(sa.Column('implicit_points', sa.Float(), nullable=True))
        batch.add_column(sa.Column('implicit_points_at', engine.store.types.UtcDateTime(),
                                   nullable=True))
        batch.add_column(sa.Column('implicit_points_model',
                                   sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True))
    op.create_index('ix_score_entry_explicit', 'score_entry', ['lead_id', 'rule_id'],
                    unique=False, sqlite_where=sa.text("kind = 'explicit'"),
                    postgresql_where=sa.text("kind = 'explicit'"))


def downgrade() -> None:
    op.drop_index('ix_score_entry_explicit', table_name='score_entry')
    with op.batch_alter_table('lead') as batch:
        batch.drop_column('implicit_points_model')
        batch.drop_column('implicit_points_at')
        batch.drop_column('implicit_points')
