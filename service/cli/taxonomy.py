"""``radar taxonomy test|calibrate|save``: a team's taxonomy against its own stored items."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tqdm import tqdm

from service.analytics.taxonomy import TaxonomyError, parse_draft
from service.cli.analyze import _resolved_or_exit, filter_options
from service.cli.context import open_runtime
from service.cli.output import Format, FormatOpt, chosen, emit, wide
from service.store.repo import FeedbackFilter

taxonomy_app = typer.Typer(
    help="Test a draft taxonomy on stored items, calibrate thresholds, save it.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)


def _draft(file: Path):
    if not file.exists():
        err.print(f"[red]{file}: no such file[/red]")
        raise typer.Exit(2)
    try:
        return parse_draft(file.read_text(encoding="utf-8"))
    except TaxonomyError as exc:
        err.print(f"[red]{file}: {exc}[/red]")
        raise typer.Exit(2) from None


def _short(s: str | None, n: int = 70) -> str:
    s = (s or "").replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


@taxonomy_app.command("test")
@filter_options
def test_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The draft taxonomy (YAML).")],
    aspect: Annotated[
        str | None, typer.Option("--aspect", help="Only this aspect of the draft.")
    ] = None,
    sample: Annotated[
        int,
        typer.Option(help="Newest stored items re-tagged (within the filters).", min=1, max=20000),
    ] = 1000,
    examples: Annotated[
        int, typer.Option(help="Matches and borderline items shown per aspect.", min=0, max=50)
    ] = 5,
    flt: FeedbackFilter = FeedbackFilter(),
    fmt: FormatOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the same as --format json).")
    ] = False,
):
    """What the draft would tag among the stored items: counts and shares per aspect, by rule
    and by model, matches with evidence, borderline items on both sides of the threshold,
    overlap with the other aspects and the change against the current taxonomy."""
    draft = _draft(file)
    if aspect is not None and aspect not in draft.ids:
        err.print(
            f"[red]--aspect: {aspect!r} is not in {file} (aspects: {', '.join(draft.ids)})[/red]"
        )
        raise typer.Exit(2)
    with open_runtime(ctx) as rt, rt.sessions() as s:
        res = rt.preview_taxonomy(
            s,
            draft,
            flt=_resolved_or_exit(s, rt.settings, flt),
            sample=sample,
            aspect=aspect,
            examples=examples,
        )
    fmt = chosen(fmt, as_json)
    rows = []
    for a in res["aspects"]:
        r = a["by_reason"]
        ch = a["change"]
        top = max(a["overlap"].items(), key=lambda kv: kv[1], default=None)
        rows.append(
            [
                a["aspect"] + (" (new)" if ch["new_aspect"] else ""),
                str(a["tagged"]),
                f"{100 * a['share']:.1f}%",
                str(a["estimated_in_scope"]),
                f"{r['rule']} / {r['model']} / {r['rule+model']}",
                f"{ch['before']} → {a['tagged']} (+{ch['gained']} −{ch['lost']})",
                f"{top[0]} ({top[1]})" if top else "–",
            ]
        )
    emit(
        fmt,
        data=res,
        rows=rows,
        title=f"Draft {file.name} on the newest {res['sample']} of {res['in_scope']} stored items",
        columns=[
            "aspect",
            "tagged",
            "share",
            "≈ in scope",
            "rule / model / both",
            "before → now",
            "overlaps most",
        ],
    )
    if fmt is not Format.table:
        return
    out = wide()
    for a in res["aspects"]:
        if not examples:
            break
        out.print(f"\n[bold]{a['aspect']}[/bold] (threshold {a['threshold']})")
        for m in a["matches"]:
            why = m.get("reason", "") + (f" `{m['rule']}`" if m.get("rule") else "")
            out.print(
                f"  #{m['id']} {m.get('confidence', 0):.2f} {escape(why)}: {escape(_short(m.get('evidence') or m['text']))}"
            )
        for label, key in (("just tagged", "just_tagged"), ("just missed", "just_missed")):
            for m in a["borderline"][key]:
                out.print(
                    f"  {label} #{m['id']} p={m['model_probability']:.2f}: {escape(_short(m['text']))}"
                )
        for m in a["dropped_by_verifier"]["items"]:
            out.print(
                f"  dropped by the harm verifier #{m['id']} p={m['verifier_probability']:.2f}"
                f" `{escape(m['rule'] or '')}`: {escape(_short(m['evidence'] or m['text']))}"
            )
    for r in res["removed_aspects"]:
        out.print(f"removed: {r['aspect']} (tagged {r['before']} of the sample before)")


@taxonomy_app.command("calibrate")
def calibrate_cmd(
    ctx: typer.Context,
    sample: Annotated[
        int,
        typer.Option(help="Newest stored items the thresholds are fitted on.", min=100, max=200000),
    ] = 5000,
    max_share: Annotated[float, typer.Option(help="Most items one aspect may tag.")] = 0.35,
    min_share: Annotated[
        float,
        typer.Option(
            help="Fewest items a model-tagged aspect should tag before its threshold is lowered."
        ),
    ] = 0.002,
):
    """Fit per-aspect model thresholds on the store's own items (no labels): an aspect must not
    tag half the store, nor nothing. Saved beside the model cache; run `radar rescore` after."""
    with open_runtime(ctx) as rt:
        bar = tqdm(
            total=None,
            desc="calibrate",
            unit="item",
            file=sys.stderr,
            disable=os.environ.get("RADAR_NO_PROGRESS") == "1",
        )
        try:
            with rt.sessions() as s:
                res = rt.calibrate_taxonomy(
                    s,
                    flt=FeedbackFilter(),
                    sample=sample,
                    max_share=max_share,
                    min_share=min_share,
                    progress=bar.update,
                )
        finally:
            bar.close()
    t = Table(title=f"Thresholds fitted on {res['items']} stored items ({res['path']})")
    for col in ("aspect", "threshold", "model share", "rule share", "share after", "change"):
        t.add_column(col)
    for a in res["aspects"]:

        def f(v):
            return "–" if v is None else f"{100 * v:.1f}%"

        t.add_row(
            a["aspect"],
            f"{a['threshold']:.3f}",
            f(a.get("model_share")),
            f(a.get("rule_share")),
            f(a.get("share_after")),
            a["change"],
        )
    wide(stderr=True).print(t)
    out.print(
        json.dumps(
            {
                "items": res["items"],
                "path": res["path"],
                "model_version": res["model_version"],
                "thresholds": {a["aspect"]: a["threshold"] for a in res["aspects"]},
            }
        )
    )


@taxonomy_app.command("save")
def save_cmd(
    ctx: typer.Context, file: Annotated[Path, typer.Argument(help="The taxonomy to make current.")]
):
    """Validate FILE and write it as the config folder's taxonomy.yaml (the old one kept as a
    .bak beside it); stored scores become stale for `radar rescore`."""
    _draft(file)
    with open_runtime(ctx) as rt:
        res = rt.save_taxonomy(file.read_text(encoding="utf-8"))
    out.print(json.dumps(res))
    err.print(f"{res['stale_items']} stored items now have stale scores: run `radar rescore`.")
