"""themes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('theme',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('centroid', sa.LargeBinary(), nullable=False),
    sa.Column('keywords', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_theme'))
    )
    op.create_table('theme_snapshot',
    sa.Column('theme_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('share', sa.Float(), nullable=False),
    sa.Column('net_sentiment', sa.Float(), nullable=False),
    sa.Column('emerging', sa.Boolean(), nullable=False),
    sa.Column('keywords', sa.Text(), nullable=False),
    sa.Column('quotes', sa.Text(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['theme_id'], ['theme.id'], name=op.f('fk_theme_snapshot_theme_id_theme'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('theme_id', 'scope', 'window_start', 'window_end', name=op.f('pk_theme_snapshot'))
    )


def downgrade() -> None:
    op.drop_table('theme_snapshot')
    op.drop_table('theme')
