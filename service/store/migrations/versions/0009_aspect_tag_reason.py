"""what tagged each aspect: reason (rule, model, rule+model) and the matching rule

The hybrid tagger tags an aspect by a taxonomy rule, a calibrated model score or both; the
reason and, for rule tags, the pattern that matched are stored with the tag so that every
chart's count can be traced to why an item was counted. Tags stored before this revision
keep NULL (they were all model tags).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('aspect_score', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('rule', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('aspect_score', schema=None) as batch_op:
        batch_op.drop_column('rule')
        batch_op.drop_column('reason')
