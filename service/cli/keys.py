"""``radar keys create|list|revoke`` and ``radar audit``: API keys and the audit log from the shell."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from service.analytics.names import UnknownName
from service.cli.context import open_runtime
from service.cli.output import Format, emit, format_options
from service.store.access import (
    AccessError,
    active_keys_named,
    create_key,
    find_key,
    has_active_admin,
    key_dict,
    list_keys,
    revoke_key,
)

keys_app = typer.Typer(
    help="API keys: roles admin, analyst, viewer, ingest; optional data scope.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)


def _split(values: list[str]) -> list[str]:
    return [v.strip() for x in values for v in x.split(",") if v.strip()]


@keys_app.command("create")
def create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="admin | analyst | viewer | ingest")],
    name: Annotated[str | None, typer.Option(help="A label, e.g. who holds it.")] = None,
    region: Annotated[
        list[str], typer.Option(help="Data scope: only these regions (repeatable).")
    ] = [],
    brand: Annotated[
        list[str], typer.Option(help="Data scope: only these brands (repeatable).")
    ] = [],
    as_json: Annotated[bool, typer.Option("--json")] = False,
):
    """Create a key and print it once: only its hash is stored."""
    try:
        with open_runtime(ctx) as rt, rt.sessions() as s:
            scope = rt.names().scope(s, regions=_split(region), brands=_split(brand))
            row, text = create_key(s, role=role, actor="cli", name=name, **scope)
            info = key_dict(row)
    except AccessError as exc:
        err.print(f"[red]--role: {exc}[/red]")
        raise typer.Exit(2) from None
    except UnknownName as exc:
        err.print(f"[red]--{exc.field}: {escape(str(exc))}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        out.print_json(json.dumps({**info, "key": text}))
        return
    scope = (
        "; ".join(f"{k}={','.join(info[k])}" for k in ("regions", "brands") if info[k])
        or "all data"
    )
    out.print(
        f"{text}\n[dim]{info['role']} key {info['prefix']} ({scope}). Shown once: store it now.[/dim]"
    )


@keys_app.command("list")
@format_options
def list_cmd(ctx: typer.Context, fmt: Format = Format.table):
    """Every key: prefix, role, scope, when made, last used, revoked."""
    with open_runtime(ctx) as rt, rt.sessions() as s:
        rows = [key_dict(r) for r in list_keys(s)]
    table = [
        [
            str(r["id"]),
            r["prefix"],
            r["role"],
            r["name"] or "",
            "; ".join(f"{k}={','.join(r[k])}" for k in ("regions", "brands") if r[k]) or "all",
            r["created_at"][:16],
            (r.get("last_used_at") or "")[:16],
            (r["revoked_at"] or "")[:16],
        ]
        for r in rows
    ]
    emit(
        fmt,
        title="API keys",
        data=rows,
        rows=table,
        columns=["id", "prefix", "role", "name", "scope", "created", "last used", "revoked"],
    )


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context, prefix: Annotated[str, typer.Argument(help="The key's prefix (or its id).")]
):
    """Revoke a key: it stops working at once."""
    with open_runtime(ctx) as rt:
        with rt.sessions() as s:
            row = find_key(s, prefix_or_id=prefix)
            if row is None:
                err.print(f"[red]no key {prefix}[/red]")
                raise typer.Exit(2)
            revoke_key(s, row, actor="cli")
    out.print(f"revoked key {row.prefix}")


def ensure_admin_key(rt, *, name: str = "first admin") -> str | None:
    """A first admin key when the store has no active admin key (its text), else None."""
    with rt.sessions() as s:
        if has_active_admin(s):
            return None
        return create_key(s, role="admin", actor="setup", name=name)[1]


def rotate_demo_key(rt) -> str:
    """A fresh "demo admin" key; the previous one is revoked (each `radar demo` prints a key
    that works, and keys do not pile up)."""
    with rt.sessions() as s:
        for row in active_keys_named(s, name="demo admin"):
            revoke_key(s, row, actor="demo")
        return create_key(s, role="admin", actor="demo", name="demo admin")[1]
