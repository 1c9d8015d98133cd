"""quarantine: an enrollment whose step could not be done for its lead stops with the reason
(status quarantined) until an operator retries it; the tick's runs recorded (health, metrics);
journeys an operator paused

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('enrollment') as batch:
        batch.add_column(sa.Column('quarantined_at', engine.store.types.UtcDateTime(),
                                   nullable=True))
        batch.add_column(sa.Column('quarantine_reason', sa.Text(), nullable=True))
    op.create_index('ix_enrollment_quarantined', 'enrollment', ['journey_id'], unique=False,
                    sqlite_where=sa.text("status = 'quarantined'"),
                    postgresql_where=sa.text("status = 'quarantined'"))
    op.create_table(
        'run_record',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('started_at', engine.store.types.UtcDateTime(), nullable=False),
        sa.Column('finished_at', engine.store.types.UtcDateTime(), nullable=True),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('summary', sa.JSON(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_run_record_kind_started', 'run_record', ['kind', 'started_at'],
                    unique=False)
    op.create_table(
        'journey_pause',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('journey_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('paused_at', engine.store.types.UtcDateTime(), nullable=False),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('journey_id'),
    )


def downgrade() -> None:
    op.drop_table('journey_pause')
    op.drop_index('ix_run_record_kind_started', table_name='run_record')
    op.drop_table('run_record')
    op.drop_index('ix_enrollment_quarantined', table_name='enrollment')
    with op.batch_alter_table('enrollment') as batch:
        batch.drop_column('quarantine_reason')
        batch.drop_column('quarantined_at')
