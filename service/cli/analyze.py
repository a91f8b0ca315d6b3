"""``radar analyze segments|differences|themes``: the analytics API's answers as tables or JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from service.store.repo import (AttributeFilterError, FeedbackFilter, UnknownDimension,
                                parse_attribute_filters, utc)

analyze_app = typer.Typer(help="Segment breakdowns, significant differences and themes.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

Dim = Annotated[list[str], typer.Option("--dimension", "-d", help="region, brand, channel, language, product, "
                                        "source or an attribute (age_group…); give one or two.")]
Since = Annotated[Optional[datetime], typer.Option(help="Window start (UTC when no offset).")]
Until = Annotated[Optional[datetime], typer.Option(help="Window end, exclusive.")]
Brand = Annotated[list[str], typer.Option("--brand", help="Only these brands (repeatable).")]
Region = Annotated[list[str], typer.Option("--region", help="Only these regions (repeatable).")]
Lang = Annotated[list[str], typer.Option("--language", help="Only these languages (repeatable).")]
Attr = Annotated[list[str], typer.Option("--attr", help="Attribute filter NAME:VALUE (repeatable).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _filter(since, until, brand, region, language, attr) -> FeedbackFilter:
    try:
        attributes = parse_attribute_filters(attr)
    except AttributeFilterError as exc:
        err.print(f"[red]--attr: {exc}[/red]")
        raise typer.Exit(2) from None
    return FeedbackFilter(since=utc(since), until=utc(until), brands=tuple(brand), regions=tuple(region),
                          languages=tuple(language), attributes=attributes)


def _runtime(ctx: typer.Context):
    from service.runtime import Runtime

    return Runtime(ctx.obj.settings)


def _answer(ctx: typer.Context, query):
    """Run ``query(session, settings)`` on a fresh runtime; an unknown dimension exits with 2."""
    rt = _runtime(ctx)
    try:
        with rt.sessions() as s:
            return query(s, rt.settings)
    except UnknownDimension as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        rt.close()


def _pct(share: dict) -> str:
    if share.get("value") is None:
        return "–"
    return f"{100 * share['value']:.1f}% [{100 * share['lower']:.1f}–{100 * share['upper']:.1f}]"


def _num(iv: dict) -> str:
    if iv.get("value") is None:
        return "–"
    return f"{iv['value']:+.2f} [{iv['lower']:+.2f}, {iv['upper']:+.2f}]"


@analyze_app.command("segments")
def segments_cmd(ctx: typer.Context, dimension: Dim, since: Since = None, until: Until = None, brand: Brand = [],
                 region: Region = [], language: Lang = [], attr: Attr = [], as_json: AsJson = False,
                 limit: Annotated[int, typer.Option(help="Segments shown (largest first).")] = 50):
    """Volume, sentiment shares, mean and net sentiment (95% intervals) and top aspects per segment."""
    from service.analytics.segments import breakdown

    flt = _filter(since, until, brand, region, language, attr)
    res = _answer(ctx, lambda s, st: breakdown(s, dimensions=dimension, flt=flt, taxonomy=st.taxonomy, limit=limit))
    if as_json:
        out.print_json(json.dumps(res, ensure_ascii=False))
        return
    t = Table(title=f"by {' × '.join(res['dimensions'])} ({res['total']['volume']} items)")
    for c in ("segment", "items", "negative", "positive", "net sentiment", "top aspects (share of items)"):
        t.add_column(c)
    for row in [*res["segments"], {"segment": {"": "all"}, **res["total"]}]:
        top = sorted(row["aspects"], key=lambda a: -a["mentions"])[:3]
        t.add_row(" / ".join(str(v) for v in row["segment"].values()), str(row["volume"]),
                  _pct(row["sentiment"]["negative"]), _pct(row["sentiment"]["positive"]), _num(row["net_sentiment"]),
                  ", ".join(f"{a['aspect']} {100 * a['share_of_items']['value']:.0f}%" for a in top))
    out.print(t)


@analyze_app.command("differences")
def differences_cmd(ctx: typer.Context, dimension: Dim, since: Since = None, until: Until = None, brand: Brand = [],
                    region: Region = [], language: Lang = [], attr: Attr = [], as_json: AsJson = False,
                    aspect: Annotated[list[str], typer.Option("--aspect", help="Aspects to compare (default all).")] = [],
                    min_n: Annotated[int, typer.Option(help="Smallest segment tested.")] = 30,
                    limit: Annotated[int, typer.Option(help="Findings shown.")] = 20):
    """Segments that differ from the rest (two-proportion tests, Benjamini–Hochberg), strongest first."""
    from service.analytics.segments import differences

    flt = _filter(since, until, brand, region, language, attr)
    res = _answer(ctx, lambda s, st: differences(s, dimensions=dimension, flt=flt, min_n=min_n,
                                                 aspects=aspect or None, taxonomy=st.taxonomy, limit=limit))
    if as_json:
        out.print_json(json.dumps(res, ensure_ascii=False))
        return
    t = Table(title=f"{res['significant']} significant of {res['tested']} comparisons (q < {res['alpha']})")
    for c in ("#", "finding", "q", "effect h"):
        t.add_column(c)
    for i, f in enumerate(res["findings"], 1):
        t.add_row(str(i), f["summary"], f"{f['q_value']:.2g}", f"{f['effect_h']:+.2f}")
    out.print(t)


@analyze_app.command("themes")
def themes_cmd(ctx: typer.Context, since: Since = None, until: Until = None, brand: Brand = [], region: Region = [],
               language: Lang = [], attr: Attr = [], as_json: AsJson = False,
               days: Annotated[int, typer.Option(help="Window length when --since is not given.")] = 28):
    """Themes of a window (clusters of stored embeddings) with keywords, quotes and growth."""
    from service.analytics.themes import discover
    from service.analytics.windows import default_window, scope_key

    flt = _filter(since, until, brand, region, language, attr)

    def query(s, _):
        window = default_window(s, flt, days)
        return {"window": None, "items": 0, "themes": []} if window is None else discover(
            s, flt=flt, since=window[0], until=window[1], scope=scope_key(flt), population=FeedbackFilter(),
            now=datetime.now(timezone.utc))

    res = _answer(ctx, query)
    if as_json:
        out.print_json(json.dumps(res, ensure_ascii=False))
        return
    t = Table(title=f"themes of {res['items']} items" + (f", {res['window']['since'][:10]} – {res['window']['until'][:10]}"
                                                        if res["window"] else ""))
    for c in ("id", "theme", "items", "share (before)", "net", "quote"):
        t.add_column(c, overflow="fold")

    def row(th: dict, indent: str) -> None:
        prev = th["previous"]["share"]
        what = th["label"] if not indent else ", ".join(th["keywords"][:5])
        t.add_row(f"{indent}{th['id']}{' [bold]NEW[/bold]' if th['new'] else ' ↑' if th['emerging'] else ''}",
                  f"{indent}{what}", str(th["size"]),
                  f"{100 * th['share']:.1f}% ({'–' if prev is None else f'{100 * prev:.1f}%'})",
                  f"{th['net_sentiment']:+.2f}", th["quotes"][0]["text"][:80] if th["quotes"] else "")

    for th in res["themes"]:
        row(th, "")
        for child in th.get("children", []):
            row(child, "  › ")
    out.print(t)
