"""Subscriptions, the signed unsubscribe link and the outbox (``service/delivery``)."""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Response
from fastapi.responses import HTMLResponse

from service.api.deps import AdminDep, NamesDep, SessionDep, SettingsDep
from service.api.errors import ApiError, found
from service.api.filters import PagingDep, named_scope, page_body
from service.api.routing import DictRouter
from service.api.schemas import (
    DbInt,
    DigestPreview,
    OutboxList,
    OutboxMessage,
    SubscriptionList,
    SubscriptionPublic,
)
from service.delivery import outbox as ob
from service.delivery import subscriptions as subs
from service.store import outbox as outbox_repo
from service.store import subscriptions as subs_repo
from service.store.tables import SubscriptionRow

router = DictRouter(tags=["delivery"])


@contextmanager
def _invalid_body() -> Iterator[None]:
    """A ``SubscriptionError`` as a 422 on the body field it names."""
    try:
        yield
    except subs.SubscriptionError as exc:
        raise ApiError(
            422, str(exc), [{"field": f"body.{exc.field}", "message": str(exc)}]
        ) from None


def _get(session, subscription_id: int) -> SubscriptionRow:
    return found(
        subs_repo.get_subscription(session, subscription_id=subscription_id),
        f"subscription {subscription_id}",
    )


@router.post(
    "/subscriptions",
    response_model=SubscriptionPublic,
    status_code=201,
    summary="Subscribe an email address or a webhook",
)
def create_subscription(
    body: subs.SubscriptionIn,
    session: SessionDep,
    settings: SettingsDep,
    caller: AdminDep,
    names: NamesDep,
) -> dict[str, Any]:
    body = named_scope(body, names, session)
    with _invalid_body():
        row = subs.create(session, body, actor=caller.id, allow=settings.delivery.webhook_allow)
    return subs.subscription_dict(row)


@router.get(
    "/subscriptions",
    response_model=SubscriptionList,
    summary="The subscriptions (webhook URLs without their query)",
)
def list_subscriptions(
    session: SessionDep,
    caller: AdminDep,
    paging: PagingDep,
    active: Annotated[bool | None, Query()] = None,
) -> dict[str, Any]:
    page = subs_repo.list_subscriptions(
        session, active=active, offset=paging.offset, limit=paging.limit
    )
    return page_body("subscriptions", page, subs.subscription_dict)


@router.get(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionPublic,
    summary="One subscription",
)
def get_subscription(
    subscription_id: DbInt, session: SessionDep, caller: AdminDep
) -> dict[str, Any]:
    return subs.subscription_dict(_get(session, subscription_id))


@router.patch(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionPublic,
    summary="Change a subscription's scope, schedule or language",
)
def patch_subscription(
    subscription_id: DbInt,
    body: subs.SubscriptionPatch,
    session: SessionDep,
    caller: AdminDep,
    names: NamesDep,
) -> dict[str, Any]:
    body = named_scope(body, names, session)
    with _invalid_body():
        row = subs.update(session, _get(session, subscription_id), body, actor=caller.id)
    return subs.subscription_dict(row)


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted: no body"}},
    summary="Delete a subscription",
)
def delete_subscription(subscription_id: DbInt, session: SessionDep, caller: AdminDep) -> Response:
    subs.delete(session, _get(session, subscription_id), actor=caller.id)
    return Response(status_code=204)


@router.get(
    "/subscriptions/{subscription_id}/preview",
    response_model=DigestPreview,
    summary="The subscriber's latest digest as plain text (composes and sends nothing)",
)
def preview_subscription(
    subscription_id: DbInt, session: SessionDep, settings: SettingsDep, caller: AdminDep
) -> dict[str, Any]:
    from service.delivery.scheduler import preview

    return preview(settings, session, _get(session, subscription_id), datetime.now(UTC))


_PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">'
    "<title>Feedback Radar</title></head>"
    '<body style="font-family:Arial,Helvetica,sans-serif;max-width:560px;margin:48px auto;color:#101828">'
    '<h1 style="font-size:20px">{title}</h1><p>{text}</p>{form}</body></html>'
)
_INVALID = _PAGE.format(
    title="Link not valid", text="This unsubscribe link is not valid. 链接无效。", form=""
)
_HTML_PAGE = {  # how the routes of the unsubscribe link answer, and are documented
    "response_class": HTMLResponse,
    "responses": {
        200: {
            "description": "A page (text/html), not JSON",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        404: {
            "description": "The link is not valid (a page)",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
    },
}


Token = Annotated[str, Query(min_length=3, max_length=200)]


def _linked(session: SessionDep, settings: SettingsDep, token: Token) -> SubscriptionRow | None:
    """The subscription of a signed unsubscribe link (None: the link is not valid)."""
    return subs.from_token(
        session, token, settings.delivery.signing_key.get_secret_value().encode()
    )


LinkedDep = Annotated[SubscriptionRow | None, Depends(_linked)]


def _unsubscribed(row: SubscriptionRow | None, *, en: str, zh: str) -> HTMLResponse:
    """The page that says the link's address is unsubscribed, in the subscriber's language (the
    text ``en`` or ``zh``, the address in place of ``{}``); the 404 page where the link is not
    valid."""
    if row is None:
        return HTMLResponse(_INVALID, status_code=404)
    chinese = row.language == "zh"
    text = (zh if chinese else en).format(html.escape(row.target))
    return HTMLResponse(
        _PAGE.format(title="已退订" if chinese else "Unsubscribed", text=text, form="")
    )


@router.get(
    "/unsubscribe",
    summary="The signed link of a digest: a page that confirms before unsubscribing",
    **_HTML_PAGE,
)
def unsubscribe_page(row: LinkedDep, token: Token) -> HTMLResponse:
    # a GET changes nothing: mail scanners follow links, and must not unsubscribe anyone
    if row is None or not row.active:
        return _unsubscribed(row, en="{} is unsubscribed.", zh="{} 已退订。")
    zh = row.language == "zh"
    form = (
        f'<form method="post" action="?token={html.escape(token)}"><button type="submit" '
        f'style="font-size:16px;padding:8px 16px">{"退订" if zh else "Unsubscribe"}</button></form>'
    )
    text = (
        f"不再向 {html.escape(row.target)} 发送 Feedback Radar 的消息？"
        if zh
        else f"Stop sending Feedback Radar messages to {html.escape(row.target)}?"
    )
    return HTMLResponse(_PAGE.format(title="退订" if zh else "Unsubscribe", text=text, form=form))


@router.post(
    "/unsubscribe",
    summary="Unsubscribe: the page's button, and the one-click POST of RFC 8058 (List-Unsubscribe-Post)",
    **_HTML_PAGE,
)
def unsubscribe_post(session: SessionDep, row: LinkedDep) -> HTMLResponse:
    if row is not None:
        subs.unsubscribe(session, row)
    return _unsubscribed(
        row,
        en="{} will receive no more Feedback Radar messages.",
        zh="{} 将不再收到 Feedback Radar 的消息。",
    )


@router.get(
    "/outbox",
    response_model=OutboxList,
    summary="Composed messages: pending, sending, sent or dead-lettered (with the last error)",
)
def list_outbox(
    session: SessionDep,
    caller: AdminDep,
    paging: PagingDep,
    status: Annotated[
        list[Literal["pending", "sending", "sent", "dead", "cancelled"]], Query()
    ] = [],
    subscription_id: Annotated[DbInt | None, Query()] = None,
) -> dict[str, Any]:
    page = outbox_repo.list_messages(
        session,
        statuses=status,
        subscription_id=subscription_id,
        offset=paging.offset,
        limit=paging.limit,
    )
    return page_body("messages", page, ob.outbox_dict)


@router.post(
    "/outbox/{message_id}/retry",
    response_model=OutboxMessage,
    summary="Queue a dead-lettered message again",
)
def retry_outbox(message_id: DbInt, session: SessionDep, caller: AdminDep) -> dict[str, Any]:
    row = found(outbox_repo.get_message(session, message_id=message_id), f"message {message_id}")
    try:
        ob.retry(session, row)
    except ValueError as exc:
        raise ApiError(409, str(exc)) from None
    return ob.outbox_dict(row)
