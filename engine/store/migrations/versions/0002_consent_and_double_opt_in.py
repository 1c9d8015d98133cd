"""consent and double opt-in

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.store.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signup_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('ip', sqlmodel.sql.sqltypes.AutoString(length=45), nullable=True),
    sa.Column('at', engine.store.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('signup_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signup_attempt_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_signup_attempt_email_hash'), ['email_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_signup_attempt_ip'), ['ip'], unique=False)

    with op.batch_alter_table('consent_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('campaign', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
        batch_op.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True))

    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_version', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('tracking_consent', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('phone_consent', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('doi_nonce', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('doi_requested_at', engine.store.types.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column('doi_reminded_at', engine.store.types.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column('confirmed_at', engine.store.types.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column('unsubscribed_at', engine.store.types.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column('mail_paused_until', engine.store.types.UtcDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_lead_doi_requested_at'), ['doi_requested_at'], unique=False)
        batch_op.create_unique_constraint('uq_lead_doi_nonce', ['doi_nonce'])

    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False, server_default='nurture'))
        batch_op.add_column(sa.Column('data_started_at', engine.store.types.UtcDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_column('data_started_at')
        batch_op.drop_column('category')

    with op.batch_alter_table('lead', schema=None) as batch_op:
        # WARNING: constraint name is None; this directive will fail as
        # rendered.  Add a name, or use a naming convention; see
        # https://alembic.sqlalchemy.org/en/latest/naming.html
        batch_op.drop_constraint('uq_lead_doi_nonce', type_='unique')
        batch_op.drop_index(batch_op.f('ix_lead_doi_requested_at'))
        batch_op.drop_column('mail_paused_until')
        batch_op.drop_column('unsubscribed_at')
        batch_op.drop_column('confirmed_at')
        batch_op.drop_column('doi_reminded_at')
        batch_op.drop_column('doi_requested_at')
        batch_op.drop_column('doi_nonce')
        batch_op.drop_column('phone_consent')
        batch_op.drop_column('tracking_consent')
        batch_op.drop_column('consent_version')

    with op.batch_alter_table('consent_record', schema=None) as batch_op:
        batch_op.drop_column('language')
        batch_op.drop_column('campaign')
        batch_op.drop_column('source')

    with op.batch_alter_table('signup_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signup_attempt_ip'))
        batch_op.drop_index(batch_op.f('ix_signup_attempt_email_hash'))
        batch_op.drop_index(batch_op.f('ix_signup_attempt_at'))

    op.drop_table('signup_attempt')
