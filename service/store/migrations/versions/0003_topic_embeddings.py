"""topic embeddings and theme facets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('score') as batch:
        batch.add_column(sa.Column('topic_embedding', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('theme') as batch:
        batch.add_column(sa.Column('facet', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch.create_foreign_key(batch.f('fk_theme_parent_id_theme'), 'theme', ['parent_id'], ['id'],
                                 ondelete='CASCADE')
        batch.create_index(batch.f('ix_theme_parent_id'), ['parent_id'])


def downgrade() -> None:
    with op.batch_alter_table('theme') as batch:
        batch.drop_index(batch.f('ix_theme_parent_id'))
        batch.drop_constraint(batch.f('fk_theme_parent_id_theme'), type_='foreignkey')
        batch.drop_column('parent_id')
        batch.drop_column('facet')
    with op.batch_alter_table('score') as batch:
        batch.drop_column('topic_embedding')
