"""duplicates are the same voice: re-evaluate existing links

Until now an item was linked ``duplicate_of`` any earlier item with the same or a near-identical
text, whatever its brand, author or time. The policy is now (``service/ingest/dedup.py``,
``DuplicatePolicy``): the same brand and either the same known author, or (an author unknown on
either side) a cross-post on another source or channel within 72 hours of a text long enough
to fingerprint. Links that break
it are cleared, so those items count as the voices they are. No schema change; the downgrade
leaves the links as they are (the old ones cannot be told apart once cleared).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

CROSS_POST_HOURS = 72  # ingest.cross_post_hours's default


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        hours = "EXTRACT(EPOCH FROM (feedback.created_at - c.created_at)) / 3600.0"
    else:
        hours = "(julianday(feedback.created_at) - julianday(c.created_at)) * 24.0"
    op.execute(f"""
        UPDATE feedback SET duplicate_of = NULL
        WHERE duplicate_of IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM feedback AS c
            WHERE c.id = feedback.duplicate_of AND c.brand = feedback.brand AND (
                (c.author_hash IS NOT NULL AND feedback.author_hash IS NOT NULL
                 AND c.author_hash = feedback.author_hash)
                OR ((c.author_hash IS NULL OR feedback.author_hash IS NULL) AND feedback.minhash IS NOT NULL
                    AND (c.source <> feedback.source OR c.channel <> feedback.channel)
                    AND ABS({hours}) <= {CROSS_POST_HOURS})))
    """)


def downgrade() -> None:
    pass
