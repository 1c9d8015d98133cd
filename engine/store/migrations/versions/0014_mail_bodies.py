"""mail bodies in a table of their own (mail_body), out of the outbox rows the sender
rewrites three times per mail

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_FK = 'fk_mail_body_message_id_mail_outbox'


def upgrade() -> None:
    # The foreign key comes last: on SQLite, dropping the columns rebuilds mail_outbox
    # (copy, drop, rename), and dropping a table with children would delete their rows.
    op.create_table(
        'mail_body',
        sa.Column('message_id', sa.String(length=255), primary_key=True),
        sa.Column('body_html', sa.Text(), nullable=False),
        sa.Column('body_text', sa.Text(), nullable=False),
    )
    op.execute("INSERT INTO mail_body (message_id, body_html, body_text) "
               "SELECT message_id, body_html, body_text FROM mail_outbox "
               "WHERE body_html <> '' OR body_text <> ''")
    with op.batch_alter_table('mail_outbox') as batch:
        batch.drop_column('body_html')
        batch.drop_column('body_text')
    with op.batch_alter_table('mail_body') as batch:
        batch.create_foreign_key(_FK, 'mail_outbox', ['message_id'], ['message_id'],
                                 ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('mail_body') as batch:
        batch.drop_constraint(_FK, type_='foreignkey')
    with op.batch_alter_table('mail_outbox') as batch:
        batch.add_column(sa.Column('body_html', sa.Text(), nullable=False, server_default=''))
        batch.add_column(sa.Column('body_text', sa.Text(), nullable=False, server_default=''))
    op.execute("UPDATE mail_outbox SET "
               "body_html = (SELECT b.body_html FROM mail_body b "
               "WHERE b.message_id = mail_outbox.message_id), "
               "body_text = (SELECT b.body_text FROM mail_body b "
               "WHERE b.message_id = mail_outbox.message_id) "
               "WHERE message_id IN (SELECT message_id FROM mail_body)")
    op.drop_table('mail_body')
