"""``radar analyze segments|differences|themes``: the analytics API's answers as tables or JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from service.analytics import benchmark as bm
from service.analytics import theme_cache
from service.analytics.names import Names, UnknownName
from service.analytics.segments import breakdown, differences
from service.analytics.themes import discover
from service.analytics.windows import default_window, scope_key
from service.cli.context import open_runtime
from service.cli.options import option_bundle
from service.cli.output import Format, FormatOpt, chosen, emit
from service.store import access as access_repo
from service.store.repo import (
    AttributeFilterError,
    FeedbackFilter,
    UnknownDimension,
    parse_attribute_filters,
    utc,
)

analyze_app = typer.Typer(
    help="Segment breakdowns, significant differences and themes.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

Dim = Annotated[
    list[str],
    typer.Option(
        "--dimension",
        "-d",
        help="region, brand, channel, language, product, "
        "source or an attribute (age_group…); give one or two.",
    ),
]
Since = Annotated[datetime | None, typer.Option(help="Window start (UTC when no offset).")]
Until = Annotated[datetime | None, typer.Option(help="Window end, exclusive.")]
Brand = Annotated[list[str], typer.Option("--brand", help="Only these brands (repeatable).")]
Region = Annotated[list[str], typer.Option("--region", help="Only these regions (repeatable).")]
Lang = Annotated[list[str], typer.Option("--language", help="Only these languages (repeatable).")]
Attr = Annotated[
    list[str], typer.Option("--attr", help="Attribute filter NAME:VALUE (repeatable).")
]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print JSON instead of a table (the same as --format json).")
]


def _filter(since, until, brand, region, language, attr) -> FeedbackFilter:
    try:
        attributes = parse_attribute_filters(attr)
    except AttributeFilterError as exc:
        err.print(f"[red]--attr: {exc}[/red]")
        raise typer.Exit(2) from None
    return FeedbackFilter(
        since=utc(since),
        until=utc(until),
        brands=tuple(brand),
        regions=tuple(region),
        languages=tuple(language),
        attributes=attributes,
    )


# the feedback filter's options, which a command receives as one FeedbackFilter ``flt`` (an
# unreadable --attr exits with 2): put @filter_options under @app.command
filter_options = option_bundle(
    "flt",
    [
        ("since", Since, None),
        ("until", Until, None),
        ("brand", Brand, []),
        ("region", Region, []),
        ("language", Lang, []),
        ("attr", Attr, []),
    ],
    _filter,
)


def _names(settings):
    return Names(settings.taxonomy, settings.competitors)


def _resolved(s, settings, flt: FeedbackFilter) -> FeedbackFilter:
    """``flt`` with brands, aspects and regions given by id, display name or alias resolved."""
    return _names(settings).filter(s, flt)


def _resolved_or_exit(s, settings, flt: FeedbackFilter) -> FeedbackFilter:
    """``_resolved``, an unknown brand, aspect or region exiting with 2 and the valid ones."""
    try:
        return _resolved(s, settings, flt)
    except UnknownName as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def refresh_theme_cache(rt) -> list[dict]:
    """The themes job: the default windows of everyone's scope (unrestricted, and each active
    API key's regions and brands), computed and stored for ``GET /v1/themes``."""
    # lazy: service.api.deps imports FastAPI and the scoring stack (~0.35 s)
    from service.api.deps import Caller

    with rt.sessions() as s:
        scopes = {scope_key(FeedbackFilter()): FeedbackFilter()}
        for row in access_repo.list_keys(s, active=True):
            regions, brands = json.loads(row.regions), json.loads(row.brands)
            flt = Caller(
                id="job",
                role=row.role,
                regions=tuple(regions) or None,
                brands=tuple(brands) or None,
            ).restrict(FeedbackFilter())
            scopes[scope_key(flt)] = flt
        return theme_cache.refresh(
            s,
            scopes=list(scopes.values()),
            days=rt.settings.dashboard.themes_windows_days,
            now=datetime.now(UTC),
            competitors=rt.settings.competitors,
        )


def _answer(ctx: typer.Context, query):
    """Run ``query(session, settings)`` on a fresh runtime; an unknown dimension, brand, aspect
    or region exits with 2 and names the valid ones."""
    try:
        with open_runtime(ctx) as rt, rt.sessions() as s:
            return query(s, rt.settings)
    except (UnknownDimension, UnknownName) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _pct(share: dict) -> str:
    if share.get("value") is None:
        return "–"
    return f"{100 * share['value']:.1f}% [{100 * share['lower']:.1f}–{100 * share['upper']:.1f}]"


def _num(iv: dict) -> str:
    if iv.get("value") is None:
        return "–"
    return f"{iv['value']:+.2f} [{iv['lower']:+.2f}, {iv['upper']:+.2f}]"


@analyze_app.command("segments")
@filter_options
def segments_cmd(
    ctx: typer.Context,
    dimension: Dim,
    flt: FeedbackFilter = FeedbackFilter(),
    as_json: AsJson = False,
    fmt: FormatOpt = None,
    limit: Annotated[int, typer.Option(help="Segments shown (largest first).")] = 50,
):
    """Volume, sentiment shares, mean and net sentiment (95% intervals) and top aspects per segment."""
    fmt = chosen(fmt, as_json)
    res = _answer(
        ctx,
        lambda s, st: breakdown(
            s, dimensions=dimension, flt=_resolved(s, st, flt), taxonomy=st.taxonomy, limit=limit
        ),
    )
    rows = []
    for row in [*res["segments"], {"segment": {"": "all"}, **res["total"]}]:
        top = sorted(row["aspects"], key=lambda a: -a["mentions"])[:3]
        rows.append(
            [
                " / ".join(str(v) for v in row["segment"].values()),
                str(row["volume"]),
                _pct(row["sentiment"]["negative"]),
                _pct(row["sentiment"]["positive"]),
                _num(row["net_sentiment"]),
                ", ".join(f"{a['aspect']} {100 * a['share_of_items']['value']:.0f}%" for a in top),
            ]
        )
    emit(
        fmt,
        data=res,
        rows=rows,
        title=f"by {' × '.join(res['dimensions'])} ({res['total']['volume']} items)",
        columns=[
            "segment",
            "items",
            "negative",
            "positive",
            "net sentiment",
            "top aspects (share of items)",
        ],
    )


@analyze_app.command("differences")
@filter_options
def differences_cmd(
    ctx: typer.Context,
    dimension: Dim,
    flt: FeedbackFilter = FeedbackFilter(),
    as_json: AsJson = False,
    fmt: FormatOpt = None,
    aspect: Annotated[
        list[str], typer.Option("--aspect", help="Aspects to compare (default all).")
    ] = [],
    min_n: Annotated[int, typer.Option(help="Smallest segment tested.")] = 30,
    limit: Annotated[int, typer.Option(help="Findings shown.")] = 20,
):
    """Segments that differ from the rest (two-proportion tests, Benjamini–Hochberg), strongest first."""
    fmt = chosen(fmt, as_json)
    res = _answer(
        ctx,
        lambda s, st: differences(
            s,
            dimensions=dimension,
            flt=_resolved(s, st, flt),
            min_n=min_n,
            aspects=_names(st).aspects(s, aspect) or None,
            taxonomy=st.taxonomy,
            limit=limit,
        ),
    )
    emit(
        fmt,
        data=res,
        title=f"{res['significant']} significant of {res['tested']} comparisons (q < {res['alpha']})",
        columns=["#", "finding", "q", "effect h"],
        rows=[
            [str(i), escape(f["summary"]), f"{f['q_value']:.2g}", f"{f['effect_h']:+.2f}"]
            for i, f in enumerate(res["findings"], 1)
        ],
    )


@analyze_app.command("themes")
@filter_options
def themes_cmd(
    ctx: typer.Context,
    flt: FeedbackFilter = FeedbackFilter(),
    as_json: AsJson = False,
    fmt: FormatOpt = None,
    days: Annotated[int, typer.Option(help="Window length when --since is not given.")] = 28,
    refresh_cache: Annotated[
        bool,
        typer.Option(
            "--refresh-cache",
            help="Instead: compute and store the themes the API answers from, for "
            "every API key's scope and dashboard.themes_windows_days (a job for cron).",
        ),
    ] = False,
):
    """Themes of a window (clusters of stored embeddings) with keywords, quotes and growth."""
    if refresh_cache:
        with open_runtime(ctx) as rt:
            done = refresh_theme_cache(rt)
        emit(
            chosen(fmt, as_json),
            data=done,
            rows=[[d["scope"], str(d["days"]), str(d["items"]), str(d["themes"])] for d in done],
            columns=["scope", "days", "items", "themes"],
            title="themes stored for the API",
        )
        return
    fmt = chosen(fmt, as_json)

    def query(s, settings):
        flt_ = _resolved(s, settings, flt)
        window = default_window(s, flt_, days)
        return (
            {"window": None, "items": 0, "themes": []}
            if window is None
            else discover(
                s,
                flt=flt_,
                since=window[0],
                until=window[1],
                scope=scope_key(flt_),
                population=FeedbackFilter(),
                now=datetime.now(UTC),
                competitors=settings.competitors,
            )
        )

    res = _answer(ctx, query)
    rows = []

    def row(th: dict, indent: str) -> None:
        prev = th["previous"]["share"]
        what = th["label"] if not indent else ", ".join(th["keywords"][:5])
        rows.append(
            [
                f"{indent}{th['id']}{' [bold]NEW[/bold]' if th['new'] else ' ↑' if th['emerging'] else ''}",
                f"{indent}{escape(what)}",
                str(th["size"]),
                f"{100 * th['share']:.1f}% ({'–' if prev is None else f'{100 * prev:.1f}%'})",
                f"{th['net_sentiment']:+.2f}",
                escape(th["quotes"][0]["text"][:80]) if th["quotes"] else "",
            ]
        )

    for th in res["themes"]:
        row(th, "")
        for child in th.get("children", []):
            row(child, "  › ")
    emit(
        fmt,
        data=res,
        rows=rows,
        columns=["id", "theme", "items", "share (before)", "net", "quote"],
        title=f"themes of {res['items']} items"
        + (
            f", {res['window']['since'][:10]} – {res['window']['until'][:10]}"
            if res["window"]
            else ""
        ),
    )


benchmark_app = typer.Typer(
    help="Competitor benchmark: gaps per aspect, strengths and weaknesses, priorities.",
    invoke_without_command=True,
)


def _benchmark_window(s, flt: FeedbackFilter, days: int) -> FeedbackFilter | None:
    window = default_window(s, flt, days)
    return None if window is None else replace(flt, since=window[0], until=window[1])


@benchmark_app.callback()
def benchmark_cmd(
    ctx: typer.Context,
    since: Since = None,
    until: Until = None,
    days: Annotated[int, typer.Option(help="Window length when --since is not given.")] = 90,
    region: Region = [],
    language: Lang = [],
    attr: Attr = [],
    brand: Annotated[
        list[str], typer.Option("--brand", help="Competitors to compare (default all).")
    ] = [],
    aspect: Annotated[
        list[str], typer.Option("--aspect", help="Aspects to compare (default all).")
    ] = [],
    segment: Annotated[
        str | None, typer.Option(help="Compare within each segment of this dimension.")
    ] = None,
    priorities: Annotated[
        bool, typer.Option("--priorities", help="Rank our aspects by importance × gap.")
    ] = False,
    alpha: Annotated[float, typer.Option(help="FDR level of the gap tests.")] = 0.05,
    as_json: AsJson = False,
    fmt: FormatOpt = None,
):
    """Our brand against competitors aspect by aspect: net sentiment gaps with 95% intervals and BH q-values
    (significant ones marked), or with --priorities the improvement priorities."""
    if ctx.invoked_subcommand is not None:
        return
    flt = _filter(since, until, [], region, language, attr)

    def query(s, st):
        scoped = _benchmark_window(s, _resolved(s, st, flt), days)
        if scoped is None:
            return None
        kw = dict(
            session=s,
            flt=scoped,
            our_brand=st.competitors.our_brand,
            brands=_names(st).brands(s, brand),
            aspects=_names(st).aspects(s, aspect),
            segment=segment,
            alpha=alpha,
            taxonomy=st.taxonomy,
        )
        res = bm.benchmark(**kw)
        if priorities:
            res = bm.priorities(s, res, flt=scoped)
        res["window"] = {"since": scoped.since.isoformat(), "until": scoped.until.isoformat()}
        return res

    fmt = chosen(fmt, as_json)
    res = _answer(ctx, query)
    if res is None:
        err.print("no feedback in this window")
        raise typer.Exit(1)
    if priorities:
        rows = [
            [
                seg,
                str(r["rank"]),
                r["aspect"],
                f"{r['priority']:.4f}",
                f"{r['importance']:.3f}",
                f"{r['deficit']:.3f}",
                r["versus"] or "–",
                "–" if r["gap_q_value"] is None else f"{r['gap_q_value']:.3g}",
                "–" if r["our_net_sentiment"] is None else f"{r['our_net_sentiment']:+.2f}",
            ]
            for seg, ranked in res["priorities"].items()
            for r in ranked
        ]
        columns = [
            "segment",
            "rank",
            "aspect",
            "priority",
            "importance",
            "deficit",
            "versus",
            "gap q",
            "our net",
        ]
        emit(
            fmt,
            data=res,
            rows=rows,
            columns=columns,
            title=f"Improvement priorities for {res['our_brand']}",
            justify={c: "right" for c in columns if c not in ("segment", "aspect", "versus")},
        )
        if fmt is Format.table:
            imp = res["importance"]
            out.print(
                f"importance: OLS of our items' {imp['target']} on aspect sentiment ({imp['items']} items, "
                f"R² {imp.get('r_squared')})"
            )
        return
    net = {(m["segment"], m["aspect"], m["brand"]): m["net_sentiment"] for m in res["metrics"]}
    rows = []
    for g in sorted(res["gaps"], key=lambda g: (g["segment"], g["aspect"], g["competitor"])):
        if g["gap"] is None:
            continue
        ours = net.get((g["segment"], g["aspect"], res["our_brand"]), {}).get("value")
        theirs = net.get((g["segment"], g["aspect"], g["competitor"]), {}).get("value")
        mark = {"ours": "[green]ours[/green]", "competitor": "[red]theirs[/red]"}.get(
            g["favours"], ""
        )
        rows.append(
            [
                g["segment"],
                g["aspect"],
                g["competitor"],
                "–" if ours is None else f"{ours:+.2f}",
                "–" if theirs is None else f"{theirs:+.2f}",
                f"{g['gap']:+.2f} [{g['lower']:+.2f}, {g['upper']:+.2f}]",
                f"{g['q_value']:.3g}",
                mark,
            ]
        )
    columns = ["segment", "aspect", "competitor", "ours", "theirs", "gap [95%]", "q", "favours"]
    emit(
        fmt,
        data=res,
        rows=rows,
        columns=columns,
        title=f"{res['our_brand']} vs competitors, {res['window']['since'][:10]} to {res['window']['until'][:10]} "
        f"({res['tests']} gaps tested, BH at {res['alpha']})",
        justify={c: "right" for c in columns if c not in ("segment", "aspect", "competitor")},
    )
