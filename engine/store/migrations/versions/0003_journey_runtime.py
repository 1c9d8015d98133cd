"""journey runtime

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sent_content',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('content_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('journey_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('step_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('sent_at', engine.store.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lead_id', 'content_id', name='uq_sent_content')
    )
    op.create_table('tracked_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('content_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('outbox_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', engine.store.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_id')
    )
    with op.batch_alter_table('tracked_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tracked_link_lead_id'), ['lead_id'], unique=False)

    with op.batch_alter_table('enrollment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step_entered_at', engine.store.types.UtcDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('enrollment', schema=None) as batch_op:
        batch_op.drop_column('step_entered_at')

    with op.batch_alter_table('tracked_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tracked_link_lead_id'))

    op.drop_table('tracked_link')
    op.drop_table('sent_content')
