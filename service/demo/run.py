"""``radar demo``: generate, ingest, score and summarise the demo data set."""

from __future__ import annotations

import json
import math
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from tqdm import tqdm

from service.analytics import effects
from service.analytics.trends import track_phrase
from service.delivery.scheduler import preview
from service.delivery.subscriptions import DEFAULTS, LISTS
from service.demo.generator import TRACKED_PHRASES, DemoConfig, gold_did, write_demo
from service.ingest.readers import count_rows, read_records
from service.runtime import Runtime
from service.store import actions as actions_repo
from service.store import alerts as alerts_repo
from service.store import repo
from service.store.tables import FeedbackRow, ScoreRow, SubscriptionRow


def _share_table(
    rows: list[dict], dims: list[str], title: str, top: int = 8
) -> tuple[Table, list[dict]]:
    seg: dict[tuple, dict] = {}
    for r in rows:
        key = tuple(r[d] for d in dims)
        s = seg.setdefault(key, {"before": [0, 0], "after": [0, 0]})
        s[r["period"]][0] += r["items"]
        s[r["period"]][1] += r["hits"] or 0
    out = []
    for key, s in seg.items():
        b = s["before"][1] / s["before"][0] if s["before"][0] else 0.0
        a = s["after"][1] / s["after"][0] if s["after"][0] else 0.0
        n1, n2 = s["before"][0], s["after"][0]
        pooled = (s["before"][1] + s["after"][1]) / max(n1 + n2, 1)
        se = math.sqrt(pooled * (1 - pooled) * (1 / max(n1, 1) + 1 / max(n2, 1))) or 1.0
        out.append(
            {
                **dict(zip(dims, key)),
                "n_before": n1,
                "share_before": b,
                "n_after": n2,
                "share_after": a,
                "change": a - b,
                "z": (a - b) / se,
            }
        )
    out.sort(key=lambda r: -r["z"])  # by evidence, so that small noisy segments do not lead
    t = Table(title=title)
    for d in dims:
        t.add_column(d)
    for c in ("n before", "share before", "n after", "share after", "change", "z"):
        t.add_column(c, justify="right")
    for r in out[:top]:
        t.add_row(
            *[str(r[d]) for d in dims],
            str(r["n_before"]),
            f"{r['share_before']:.1%}",
            str(r["n_after"]),
            f"{r['share_after']:.1%}",
            f"{r['change']:+.1%}",
            f"{r['z']:+.1f}",
        )
    return t, out


def run_demo(rt: Runtime, *, workdir: Path, per_week: int, seed: int, console: Console) -> dict:
    cfg = DemoConfig(per_week=per_week, seed=seed)
    workdir = Path(workdir)
    data = workdir / "demo_feedback.csv"
    info = write_demo(data, cfg)
    console.print(f"generated {info['rows']:,} items → {data} (ground truth: {info['truth']})")
    t0 = time.time()
    service = rt.ingest_service()
    with tqdm(
        total=count_rows(data),
        desc="ingest + score",
        unit="item",
        file=sys.stderr,
        dynamic_ncols=True,
    ) as bar:
        report = service.ingest(read_records(data), keep_results=False, on_chunk=bar.update)
    rt.refresh_rollups()
    elapsed = time.time() - t0
    console.print(f"ingested in {elapsed:.0f}s: {json.dumps(report.counts)}")

    ours = rt.settings.competitors.our_brand
    with rt.sessions() as s:
        total = repo.count_feedback(s)
        dup = total - repo.count_feedback(s, flt=repo.FeedbackFilter(include_duplicates=False))
        by_language = repo.count_by(s, dimension="language")
        shift_at = cfg.start + timedelta(weeks=cfg.shift_week)
        surge_at = cfg.start + timedelta(weeks=cfg.surge_week)
        mid = cfg.start + timedelta(weeks=cfg.weeks // 2)
        rollback_at = cfg.start + timedelta(weeks=cfg.rollback_week) if cfg.rollback_week else None
        spicy = repo.aspect_split_counts(
            s,
            aspect="taste",
            sentiment="negative",
            split_at=shift_at,
            group_by=["region", "attr:age_group"],
            flt=repo.FeedbackFilter(brands=(ours,), until=rollback_at),
        )
        pack = repo.aspect_split_counts(
            s, aspect="packaging", sentiment="negative", split_at=surge_at, group_by=["brand"]
        )
        deliv = repo.aspect_split_counts(
            s, aspect="delivery", sentiment="negative", split_at=mid, group_by=["brand"]
        )
    console.print(
        f"\nstored items: {total:,} ({dup:,} flagged as near/exact duplicates of another item)"
    )
    langs = ", ".join(f"{k}: {v:,}" for k, v in by_language.items())
    supported = getattr(rt.scorer, "languages", ())
    console.print(
        f"languages: {langs}"
        + (
            f" (aspects are tagged for {', '.join(supported)}; other languages "
            "get sentiment and embeddings until a multilingual encoder is built)"
            if supported
            else ""
        )
    )
    until = f" to the rollback (week {cfg.rollback_week})" if cfg.rollback_week else ""
    t1, spicy_rows = _share_table(
        spicy,
        ["region", "attr:age_group"],
        f"Our brand ({ours}): share of items negative on taste, before vs from week "
        f"{cfg.shift_week} ({shift_at:%Y-%m-%d}){until}",
    )
    console.print(t1)
    t2, _ = _share_table(
        pack,
        ["brand"],
        f"Share of items negative on packaging, before vs from week "
        f"{cfg.surge_week} ({surge_at:%Y-%m-%d})",
    )
    console.print(t2)
    t3, _ = _share_table(
        deliv,
        ["brand"],
        "Share of items negative on delivery, first vs second half (injected: a slow improvement)",
    )
    console.print(t3)
    top = spicy_rows[0]
    console.print(
        f"[bold]Largest taste shift:[/bold] {top['region']} / {top['attr:age_group']} "
        f"({top['share_before']:.0%} → {top['share_after']:.0%} negative on taste). "
        f"Injected: {cfg.shift_region} / {cfg.shift_age_group} from week {cfg.shift_week}."
    )
    console.print(f"tracked phrases: {', '.join(track_demo_phrases(rt))}")
    alerts = replay_alerts(rt, cfg, console)
    truths = json.loads(Path(info["truth"]).read_text())["items"]
    action = record_demo_action(rt, cfg, truths, console)
    answered = answer_demo_complaints(rt, cfg)
    console.print(
        f"answers recorded (as a CRM would post them): {answered['answered']:,} of {answered['negative']:,} "
        f"negative complaints and social posts about {ours} in the last {answered['weeks']} weeks"
    )
    show_digest(rt, cfg, console)
    return {
        "items": total,
        "top_shift": top,
        "alerts": alerts,
        "action": action,
        "answered": answered,
    }


def answer_demo_complaints(
    rt: Runtime, cfg: DemoConfig, *, weeks: int = 8, share: float = 0.75, seed: int = 11
) -> dict:
    """The demo's service desk: of our brand's negative complaints and social posts in the last
    ``weeks`` weeks, ``share`` are answered, after a lognormal delay (median 8 hours), as a CRM
    would record them through ``POST /v1/feedback/{id}/response``."""

    rng = random.Random(seed)
    end = cfg.start + timedelta(weeks=cfg.weeks)
    since = end - timedelta(weeks=weeks)
    with rt.sessions() as s:
        rows = s.execute(
            select(FeedbackRow.id, FeedbackRow.created_at)
            .join(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
            .where(
                FeedbackRow.brand == rt.settings.competitors.our_brand,
                FeedbackRow.channel.in_(["complaint", "social"]),
                ScoreRow.sentiment == "negative",
                FeedbackRow.created_at >= since,
                FeedbackRow.created_at < end,
                FeedbackRow.duplicate_of.is_(None),
            )
            .order_by(FeedbackRow.id)
        ).all()
        answered = 0
        for item_id, created in rows:
            if rng.random() >= share:
                continue
            at = created + timedelta(hours=min(rng.lognormvariate(2.08, 1.0), 24 * 14))
            if at > end:
                continue
            actions_repo.add_response(
                s,
                feedback_id=item_id,
                responded_at=at,
                responder=rng.choice(("Li Na", "Wang Fang", "Sam Ortiz", "service desk")),
                channel=rng.choice(("phone", "email", "public_reply")),
                recorded_by="demo",
                now=end.astimezone(UTC),
            )
            answered += 1
        s.commit()
    return {"negative": len(rows), "answered": answered, "weeks": weeks}


def record_demo_action(
    rt: Runtime, cfg: DemoConfig, truths, console: Console | None = None
) -> dict | None:
    """The demo team's answer to the East × 18-24 taste alert: the spicy recipe rolled back there
    from ``cfg.rollback_week``, recorded as an action linked to the alert; then its effect as
    Radar measures it (as of the end of the data) beside what the generator truly did over the
    same weeks and controls (``gold_did``)."""

    if cfg.rollback_week is None:
        return None
    segment = {"region": cfg.shift_region, "age_group": cfg.shift_age_group}
    start = cfg.start + timedelta(weeks=cfg.rollback_week)
    now = cfg.start + timedelta(weeks=cfg.weeks)
    with rt.sessions() as s:
        alert = next(
            (
                a
                for a in alerts_repo.list_alerts(
                    s, types=["preference_shift"], brands=[cfg.shift_brand]
                )
                if a.aspect == "taste" and json.loads(a.segment) == segment
            ),
            None,
        )
        row = actions_repo.create_action(
            s,
            title=f"Spicy recipe rolled back for {cfg.shift_age_group} buyers in {cfg.shift_region}",
            kind="product",
            description="The new chili blend is replaced by the previous recipe in the East's 18-24 channels.",
            brand=cfg.shift_brand,
            segment=segment,
            aspect="taste",
            metric="negative_share",
            min_effect=0.05,
            started_at=start,
            owner="product team (East)",
            due_at=start + timedelta(days=14),
            actor="demo",
            now=start - timedelta(days=2),
            status="active",
            alert_ids=[alert.id] if alert else [],
        )
        actions_repo.update_action(
            s, row=row, changes={"status": "completed"}, now=start + timedelta(days=7)
        )
        data = actions_repo.action_dict(row, actions_repo.alerts_of(s, action_ids=[row.id])[row.id])
        report = effects.action_effect(s, action=data, now=now)
        s.commit()
    out = report.to_dict()

    def week_of(iso: str) -> int:
        return (datetime.fromisoformat(iso).replace(tzinfo=UTC) - cfg.start).days // 7

    pre = [week_of(p["week"]) for p in out["series"] if p["period"] == "before"]
    post = [week_of(p["week"]) for p in out["series"] if p["period"] == "after"]
    chosen = [
        (c["segment"]["region"], c["segment"]["age_group"]) for c in out["controls"] if c["chosen"]
    ]
    truth = (
        gold_did(
            truths,
            brand=cfg.shift_brand,
            treated=(cfg.shift_region, cfg.shift_age_group),
            controls=chosen,
            aspect="taste",
            pre_weeks=range(min(pre), max(pre) + 1),
            post_weeks=range(min(post), max(post) + 1),
        )
        if pre and post
        else None
    )
    covered = bool(
        truth and out["lower"] is not None and out["lower"] <= truth["did"] <= out["upper"]
    )
    if console is not None:
        console.print(
            f"\n[bold]Action {row.id}[/bold] ({'answers alert ' + str(alert.id) if alert else 'no alert found'}): "
            f"{row.title}"
        )
        console.print(f"  {out['summary']}", markup=False)
        if truth:
            console.print(
                f"  injected (generator's labels, same weeks and controls): {100 * truth['did']:+.1f} points; "
                f"{'inside' if covered else 'OUTSIDE'} the interval",
                markup=False,
            )
    return {
        "action_id": row.id,
        "alert_id": alert.id if alert else None,
        "effect": out,
        "truth": truth,
        "covered": covered,
    }


# The East regional lead's digest subscription: how it differs from a new subscription's defaults.
EAST_LEAD = {
    "regions": ["East"],
    "min_severity": "L2",
    "language": "zh",
    "timezone": "Asia/Shanghai",
    "quiet": "all_quiet",
}


def show_digest(rt: Runtime, cfg: DemoConfig, console: Console) -> None:
    """What the East regional lead's Chinese daily digest says the morning after the data ends
    (composed, not sent: subscribers are added with `radar subscriptions add`)."""

    values = DEFAULTS | EAST_LEAD
    lead = SubscriptionRow(
        channel="email",
        format="email",
        target="lead.east@example.com",
        **{k: json.dumps(v, ensure_ascii=False) if k in LISTS else v for k, v in values.items()},
        active=True,
        created_at=cfg.start.astimezone(UTC),
    )
    with rt.sessions() as s:
        p = preview(rt.settings, s, lead, cfg.start + timedelta(weeks=cfg.weeks, hours=1))
    console.print(
        f"\n[bold]Digest preview[/bold] (East regional lead, Chinese, L2 and above): {p['subject']}"
    )
    console.print(p["text"], markup=False, highlight=False, soft_wrap=True)


def track_demo_phrases(rt: Runtime) -> list[str]:
    """Track the demo team's phrases (with paraphrases), as they would through the API."""

    with rt.sessions() as s:
        return [track_phrase(s, rt.scorer, p, actor="demo").phrase for p in TRACKED_PHRASES]


def replay_alerts(
    rt: Runtime, cfg: DemoConfig, console: Console, first_week: int = 8
) -> list[dict]:
    """Run the alert rules as of the start of every week, as `radar alerts run` under cron
    would have, and show the alerts that stand at the end."""

    engine = rt.alert_engine()
    with rt.sessions() as s:
        for week in tqdm(
            range(first_week, cfg.weeks + 1),
            desc="alert runs (weekly replay)",
            unit="week",
            file=sys.stderr,
            dynamic_ncols=True,
        ):
            engine.run(s, cfg.start + timedelta(weeks=week), actor="demo")
        rows = [
            alerts_repo.alert_dict(r)
            for r in alerts_repo.list_alerts(
                s, exclude_types=["severe_complaint"], oldest_first=True
            )
        ]
        severe = alerts_repo.count_alerts(s, types=["severe_complaint"])
    by_sev = ", ".join(f"{n} {sev}" for sev, n in sorted(severe.items()))
    t = Table(
        title=f"Alerts raised by the weekly replay ({sum(severe.values())} single severe "
        f"complaints not listed{': ' + by_sev if by_sev else ''})"
    )
    for c in ("raised", "sev", "type", "what", "onset"):
        t.add_column(c, overflow="fold")
    for a in rows:
        t.add_row(
            a["first_detected_at"][:10],
            a["severity"],
            a["type"],
            a["title"],
            (a["onset"] or "")[:10],
        )
    console.print(t)
    return rows
