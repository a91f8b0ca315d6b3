"""themes answers cached per scope and window

``theme_cache`` keeps what ``GET /v1/themes`` answered (quotes as item ids) for a scope (the
filter's key), a window length and the window's end; the request path reads it, a scheduled
job (``radar serve --themes-every``, ``radar analyze themes --refresh-cache``) keeps it warm.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'theme_cache',
        sa.Column('scope', sa.String(length=64), nullable=False),
        sa.Column('span_s', sa.BigInteger(), nullable=False),
        sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('result', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('scope', 'span_s', 'window_end', name=op.f('pk_theme_cache')),
    )
    with op.batch_alter_table('theme_cache') as batch_op:
        batch_op.create_index(batch_op.f('ix_theme_cache_computed_at'), ['computed_at'], unique=False)


def downgrade() -> None:
    op.drop_table('theme_cache')
