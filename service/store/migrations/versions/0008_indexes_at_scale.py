"""indexes for hundreds of millions of items

A BRIN index on feedback.created_at (PostgreSQL): a few pages for a whole table of items that
arrive roughly in time order, where the btree is gigabytes. The btree stays, widened to
(created_at, id), the key of the newest-first keyset pagination. The attribute and aspect look-ups
carry the item id, so the semi-joins of segment filters and aspect series are answered from the
index alone (index-only scans) without visiting the table.

Every index is created IF NOT EXISTS: on a large live PostgreSQL table, create them beforehand
with CREATE INDEX CONCURRENTLY under these names and this revision only records them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pg = op.get_bind().dialect.name == 'postgresql'
    if pg:
        op.create_index('ix_feedback_created_at_brin', 'feedback', ['created_at'], unique=False,
                        postgresql_using='brin', postgresql_with={'pages_per_range': 32}, if_not_exists=True)
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_created_at_id', ['created_at', 'id'], unique=False, if_not_exists=True)
        batch_op.drop_index('ix_feedback_created_at')
    with op.batch_alter_table('feedback_attribute', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_attribute_name_value_feedback_id', ['name', 'value', 'feedback_id'],
                              unique=False, if_not_exists=True)
        batch_op.drop_index('ix_feedback_attribute_name_value')
    with op.batch_alter_table('aspect_score', schema=None) as batch_op:
        batch_op.create_index('ix_aspect_score_aspect_sentiment_feedback_id', ['aspect', 'sentiment', 'feedback_id'],
                              unique=False, if_not_exists=True)
        batch_op.drop_index('ix_aspect_score_aspect_sentiment')


def downgrade() -> None:
    with op.batch_alter_table('aspect_score', schema=None) as batch_op:
        batch_op.create_index('ix_aspect_score_aspect_sentiment', ['aspect', 'sentiment'], unique=False)
        batch_op.drop_index('ix_aspect_score_aspect_sentiment_feedback_id')
    with op.batch_alter_table('feedback_attribute', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_attribute_name_value', ['name', 'value'], unique=False)
        batch_op.drop_index('ix_feedback_attribute_name_value_feedback_id')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_created_at', ['created_at'], unique=False)
        batch_op.drop_index('ix_feedback_created_at_id')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_feedback_created_at_brin', table_name='feedback')
