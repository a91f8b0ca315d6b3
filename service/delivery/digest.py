"""Compose what a subscriber receives: a digest of a period, or one alert as it is raised.

The public face of the digest modules (the scheduler imports from here):

- ``digest_data``: ``build_digest`` gathers, as of the period's end, the alerts in the
  subscriber's scope that were active during the period, what changed in it, and the closing
  sections (net sentiment by region and against competitors, actions, response times), as
  plain data (``Digest``);
- ``digest_facts``: those facts worded in the subscriber's language (English or Chinese),
  from the digest's part of the shared table of interface strings (``strings``);
- ``digest_render``: ``render_digest`` and ``render_alert`` lay them out as the email's plain
  text and HTML (``templates/digest.html``, Jinja2 with autoescaping) with their charts;
  ``digest_notice`` and ``alert_notice`` as a ``Notice`` for the webhook formats;
- ``message``: ``email_bytes`` makes the multipart message, ``message_id`` its deterministic
  id, ``unsubscribe_url`` the signed one-click link.
"""

from __future__ import annotations

from service.delivery.digest_data import (
    ActionReport,
    Digest,
    ResponseMetrics,
    build_digest,
    digest_actions,
    digest_benchmark,
    digest_regions,
    digest_responses,
    region_sentiment,
)
from service.delivery.digest_facts import action_line, alert_link, responses_line, what_moved, where
from service.delivery.digest_render import (
    Rendered,
    alert_notice,
    digest_notice,
    render_alert,
    render_digest,
)
from service.delivery.message import email_bytes, message_id, unsubscribe_url
from service.delivery.strings import t

__all__ = [
    "ActionReport",
    "Digest",
    "Rendered",
    "ResponseMetrics",
    "action_line",
    "alert_link",
    "alert_notice",
    "build_digest",
    "digest_actions",
    "digest_benchmark",
    "digest_notice",
    "digest_regions",
    "digest_responses",
    "email_bytes",
    "message_id",
    "region_sentiment",
    "render_alert",
    "render_digest",
    "responses_line",
    "t",
    "unsubscribe_url",
    "what_moved",
    "where",
]
