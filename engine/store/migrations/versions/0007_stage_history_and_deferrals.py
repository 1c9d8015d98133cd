"""report facts: stage entries (velocity), sends deferred by policy, refused sign-ups

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stage_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('journey_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('entered_at', engine.store.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_stage_entry_lead', 'stage_entry', ['lead_id', 'entered_at'],
                    unique=False)
    op.create_table('send_deferral',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('journey_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('step_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('deferred_at', engine.store.types.UtcDateTime(), nullable=False),
    sa.Column('until', engine.store.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_send_deferral_lead_id'), 'send_deferral', ['lead_id'],
                    unique=False)
    op.create_index(op.f('ix_send_deferral_deferred_at'), 'send_deferral', ['deferred_at'],
                    unique=False)
    with op.batch_alter_table('signup_attempt') as batch:
        batch.add_column(sa.Column('refused', sqlmodel.sql.sqltypes.AutoString(length=200),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('signup_attempt') as batch:
        batch.drop_column('refused')
    op.drop_index(op.f('ix_send_deferral_deferred_at'), table_name='send_deferral')
    op.drop_index(op.f('ix_send_deferral_lead_id'), table_name='send_deferral')
    op.drop_table('send_deferral')
    op.drop_index('ix_stage_entry_lead', table_name='stage_entry')
    op.drop_table('stage_entry')
