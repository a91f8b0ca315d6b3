// Actions: what the team changed and whether it worked (the list, one action against its
// controls, a pilot plan), and the "record an action" form an alert's page carries. Every
// figure comes from /v1/actions; the effect is a difference in differences (README "Did it work?").
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, pct, link, chartBox, chart, COLORS } = R;
  const { table } = window.RadarUI;
  const KINDS = ["product", "packaging", "price", "service", "delivery", "communication", "other"];

  function delta(metric, x) {
    if (x === null || x === undefined) return "–";
    if (metric === "negative_share") return `${x > 0 ? "+" : ""}${(100 * x).toFixed(1)} ${t("ac.points")}`;
    return `${x > 0 ? "+" : ""}${x.toFixed(metric === "volume" ? 1 : 2)}`;
  }
  function level(metric, x) { return metric === "negative_share" ? pct(x, 0) : x === null || x === undefined ? "–" : x.toFixed(2); }
  function verdictBadge(e) {
    const v = e ? e.verdict : "planned";
    return el("span", { class: `badge v-${v}`, "data-verdict": v }, t(`ac.v.${v}`));
  }
  function effectText(e, metric) {
    if (!e || e.effect === null || e.effect === undefined) return e ? e.message : "–";
    return `${delta(metric, e.effect)} [${delta(metric, e.lower)}, ${delta(metric, e.upper)}]`;
  }
  function where(a) { return [R.brandName(a.brand), R.segmentText(a.segment), a.aspect ? R.aspectName(a.aspect) : null].filter((x) => x && x !== "–").join(" · "); }

  // ---- the list ------------------------------------------------------------------------------
  async function actions(box, w) {
    const q = R.query();
    const status = q.getAll("status");
    const res = await api("/actions", { status, brand: w.brand, limit: 50 });
    const pick = el("select", { id: "ac-status" }, el("option", { value: "" }, t("f.all")),
      ["planned", "active", "completed", "cancelled"].map((v) => el("option", { value: v }, t(`ac.s.${v}`))));
    pick.value = status.length === 1 ? status[0] : "";
    pick.addEventListener("change", () => R.navigate({ status: pick.value || null }));
    const rows = res.actions.map((a) => el("tr", { "data-action": a.id },
      el("td", {}, link(a.title, R.href(`/dashboard/actions/${a.id}`))),
      el("td", {}, el("span", { class: `badge st-${a.status}` }, t(`ac.s.${a.status}`))),
      el("td", {}, where(a)), el("td", { class: "num" }, R.date(a.started_at)),
      el("td", {}, a.owner || "–"),
      el("td", { class: `num ${a.overdue ? "neg" : ""}` }, R.date(a.due_at), a.overdue ? ` (${t("ac.overdue")})` : ""),
      el("td", {}, verdictBadge(a.effect)),
      el("td", { class: "num" }, effectText(a.effect, a.metric))));
    box.append(card(`${t("ac.title")} (${res.actions.length}${res.next_offset ? "+" : ""})`,
      el("p", { class: "hint" }, t("ac.hint")),
      el("div", { class: "controls" }, el("label", {}, t("al.status"), " ", pick)),
      rows.length ? table([t("ac.what"), t("al.status"), t("al.segment"), { label: t("ac.start"), num: true }, t("ac.owner"),
                           { label: t("ac.due"), num: true }, t("ac.verdict"), { label: t("ac.effect"), num: true }], rows,
                          { id: "actions-table" })
        : el("p", { class: "muted" }, t("ac.none"))));
    box.append(await responsesCard(w));
    if (R.can("admin", "analyst")) box.append(planCard(w));
  }

  /** Response metrics of the window: negative items answered within 24 hours and the median time
   *  to answer, per region; alerts with an action within 7 days; actions completed by their due date. */
  async function responsesCard(w) {
    const by = R.query().get("by") || "region";
    const m = await api("/responses/metrics", { ...R.apiFilters(w), by });
    const pick = el("select", { id: "rs-by" }, ["region", "channel", "severity", "brand"].map((v) => el("option", { value: v }, t(`rs.by.${v}`))));
    pick.value = by;
    pick.addEventListener("change", () => R.navigate({ by: pick.value }));
    const rows = m.groups.map((g) => el("tr", { "data-group": g.group },
      el("td", {}, g.group), el("td", { class: "num" }, R.num(g.negative_items)), el("td", { class: "num" }, pct(g.answered_share, 0)),
      el("td", { class: "num" }, pct(g.within_share, 0)),
      el("td", { class: "num" }, g.median_hours_to_answer === null ? "–" : g.median_hours_to_answer.toFixed(1))));
    const sev = m.alerts.by_severity.map((g) => `${g.severity}: ${pct(g.share_with_action_in_time, 0)} (${g.with_action_in_time}/${g.due})`).join(" · ");
    return el("section", { class: "card", id: "responses-card" }, el("h2", {}, t("rs.title")),
      el("p", { class: "hint" }, t("rs.hint")),
      el("div", { class: "controls" }, el("label", {}, t("rs.by"), " ", pick)),
      rows.length ? table([t(`rs.by.${by}`), { label: t("rs.negative"), num: true }, { label: t("rs.answered"), num: true },
                           { label: t("rs.within"), num: true }, { label: t("rs.median"), num: true }], rows, { id: "responses-table" })
        : el("p", { class: "muted" }, t("empty")),
      el("p", { id: "responses-alerts" }, `${t("rs.alerts")}: ${sev || "–"}`),
      el("p", { id: "responses-due" }, `${t("rs.due")}: ${pct(m.alerts.share_completed_by_due_date, 0)} (${m.alerts.actions_completed_by_due_date}/${m.alerts.actions_due})`));
  }

  function segmentInputs(prefix, seg) {
    const regions = el("input", { id: `${prefix}-region`, value: seg.region || "", placeholder: "East", size: 10 });
    const age = el("input", { id: `${prefix}-age`, value: seg.age_group || "", placeholder: "18-24", size: 8 });
    const read = () => Object.fromEntries([["region", regions.value.trim()], ["age_group", age.value.trim()]].filter(([, v]) => v));
    return { nodes: [el("label", {}, t("f.region"), " ", regions), el("label", {}, t("ac.age"), " ", age)], read };
  }
  function aspectSelect(id, current) {
    const s = el("select", { id }, R.CFG.aspects.map((a) => el("option", { value: a.id }, R.aspectName(a.id))));
    s.value = current || "taste";
    return s;
  }

  function planCard(w) {
    const seg = segmentInputs("pl", { region: "East" });
    const aspect = aspectSelect("pl-aspect");
    const effect = el("input", { id: "pl-effect", type: "number", value: "5", min: "0.5", step: "0.5", size: 5 });
    const outBox = el("div", { id: "plan-result" });
    const go = el("button", { type: "button", id: "pl-go", onclick: async () => {
      go.disabled = true;
      outBox.replaceChildren(el("p", { class: "loading" }, t("loading")));
      try {
        const p = await api("/actions/plan", {}, { method: "POST", body: {
          segment: seg.read(), aspect: aspect.value, metric: "negative_share", min_effect: Number(effect.value) / 100,
          as_of: w.until } });  // the window's end: the newest data, as every page reads it
        outBox.replaceChildren(el("p", { id: "plan-message" }, p.message),
          table([{ label: t("ac.weeks"), num: true }, { label: t("ac.detectable"), num: true }],
            p.detectable_by_week.map((r) => el("tr", {}, el("td", { class: "num" }, String(r.weeks)),
              el("td", { class: "num" }, delta("negative_share", r.detectable))))),
          el("p", { class: "hint" }, `${t("ac.controls")}: ${p.controls.filter((c) => c.chosen).map((c) => R.segmentText(c.segment)).join("; ")}`));
      } catch (e) { outBox.replaceChildren(el("p", { class: "error" }, e.message)); }
      go.disabled = false;
    } }, t("ac.plan_go"));
    return card(t("ac.plan"), el("p", { class: "hint" }, t("ac.plan_hint")),
      el("div", { class: "controls" }, ...seg.nodes, el("label", {}, t("ac.aspect"), " ", aspect),
         el("label", {}, t("ac.min_effect"), " ", effect), go), outBox);
  }

  // ---- one action ------------------------------------------------------------------------------
  async function actionPage(box) {
    const a = await api(`/actions/${R.CFG.action_id}`);
    const e = a.effect || {};
    const facts = [[t("ac.kind"), t(`ac.k.${a.kind}`)], [t("al.segment"), where(a)], [t("ac.start"), R.date(a.started_at)],
                   [t("ac.end"), R.date(a.ended_at)], [t("ac.owner"), a.owner || "–"], [t("ac.due"), R.date(a.due_at)],
                   [t("ac.metric"), t(`ac.m.${a.metric}`)], [t("ac.alerts"), a.alert_ids.length ? "" : "–"]];
    const dl = el("dl", { class: "facts" }, facts.map(([k, v], i) => el("div", {}, el("dt", {}, k), el("dd", {},
      i === facts.length - 1 && a.alert_ids.length ? a.alert_ids.map((id) => link(`#${id} `, R.href(`/dashboard/alerts/${id}`))) : v))));
    const buttons = [];
    if (R.can("admin", "analyst") && !["completed", "cancelled"].includes(a.status)) {
      buttons.push(el("button", { type: "button", id: "action-close", onclick: async (ev) => {
        ev.target.disabled = true;
        try { await api(`/actions/${a.id}/close`, {}, { method: "POST", body: { status: "completed" } }); R.render(); }
        catch (err) { R.banner(err.message); ev.target.disabled = false; }
      } }, t("ac.close")));
    }
    box.append(el("section", { class: "card", id: "action-head" },
      el("p", {}, link(`← ${t("ac.back")}`, R.href("/dashboard/actions"))),
      el("h2", {}, el("span", { class: `badge st-${a.status}` }, t(`ac.s.${a.status}`)), " ", a.title),
      a.description ? el("p", {}, a.description) : null, dl,
      el("p", { id: "action-verdict" }, verdictBadge(e), " ", e.summary || e.message || ""),
      e.message && e.summary && !e.summary.includes(e.message) ? el("p", { class: "hint" }, e.message) : null,
      el("div", { class: "actions" }, buttons)));
    const series = e.series || [];
    if (series.length) {
      const x = series.map((p) => p.week);
      const metric = e.metric;
      box.append(card(t("ac.series"), el("p", { class: "hint" }, t("ac.series_hint")),
        chartBox("chart-action", (node) => chart(node, [
          { x, y: series.map((p) => p.treated), mode: "lines+markers", name: t("ac.treated"), line: { color: COLORS.negative },
            hovertemplate: "%{x|%Y-%m-%d}: %{y:.3f}<extra></extra>" },
          { x, y: series.map((p) => p.control), mode: "lines+markers", name: t("ac.control"), line: { color: COLORS.accent, dash: "dash" },
            hovertemplate: "%{x|%Y-%m-%d}: %{y:.3f}<extra></extra>" },
        ], { xaxis: { type: "date" }, yaxis: { tickformat: metric === "negative_share" ? ".0%" : "+.2f", fixedrange: true },
             shapes: [{ type: "line", x0: a.started_at, x1: a.started_at, yref: "paper", y0: 0, y1: 1, line: { color: COLORS.muted, dash: "dot" } }],
             annotations: [{ x: a.started_at, y: 1, yref: "paper", text: t("ac.start"), showarrow: false, yanchor: "bottom" }] }))));
      const tr = e.treated || {}, ct = e.control || {};
      box.append(el("section", { class: "card half", id: "action-did" }, el("h2", {}, t("ac.did")),
        table(["", { label: t("ac.before"), num: true }, { label: t("ac.after"), num: true }], [
          el("tr", {}, el("td", {}, t("ac.treated")), el("td", { class: "num" }, level(metric, tr.before)), el("td", { class: "num" }, level(metric, tr.after))),
          el("tr", {}, el("td", {}, t("ac.control")), el("td", { class: "num" }, level(metric, ct.before)), el("td", { class: "num" }, level(metric, ct.after))),
          el("tr", {}, el("td", {}, el("strong", {}, t("ac.effect"))), el("td", { class: "num", colspan: 2 }, el("strong", {}, effectText(e, metric)))),
        ]),
        e.pre_trend ? el("p", { class: "hint" }, t(e.pre_trend.ok ? "ac.parallel" : "ac.not_parallel", { p: e.pre_trend.p_value ?? "–" })) : null));
      box.append(el("section", { class: "card half", id: "action-controls" }, el("h2", {}, t("ac.controls")),
        table([t("al.segment"), { label: t("ac.items_week"), num: true }, t("ac.why")], (e.controls || []).slice(0, 12).map((c) =>
          el("tr", { class: c.chosen ? "" : "muted" }, el("td", {}, R.segmentText(c.segment)), el("td", { class: "num" }, String(c.items_per_week)),
             el("td", {}, c.reason))))));
    }
  }

  // ---- on an alert's page: the actions answering it, and a form to record one -------------------
  async function alertActions(a) {
    const res = await api("/actions", { alert_id: a.id });
    const list = res.actions.length
      ? el("ul", { id: "alert-actions" }, res.actions.map((x) => el("li", {}, link(x.title, R.href(`/dashboard/actions/${x.id}`)),
          " ", el("span", { class: `badge st-${x.status}` }, t(`ac.s.${x.status}`)), " ", verdictBadge(x.effect),
          x.effect && x.effect.summary ? el("span", { class: "meta" }, ` ${x.effect.summary}`) : "", x.owner ? ` · ${x.owner}` : "")))
      : el("p", { class: "muted", id: "alert-actions" }, t("ac.none_for_alert"));
    const section = el("section", { class: "card", id: "alert-actions-card" }, el("h2", {}, t("ac.for_alert")), list);
    if (!R.can("admin", "analyst")) return section;
    const { item, competitor, ...fields } = a.segment || {};
    const seg = { ...(a.region ? { region: a.region } : {}), ...fields };
    // the alert's segment, editable: a brand-wide alert names none, and an action needs one
    const where = segmentInputs("ra", seg);
    const rest = Object.fromEntries(Object.entries(seg).filter(([k]) => k !== "region" && k !== "age_group"));
    const title = el("input", { id: "ra-title", size: 40, placeholder: t("ac.title_hint") });
    const kind = el("select", { id: "ra-kind" }, KINDS.map((k) => el("option", { value: k }, t(`ac.k.${k}`))));
    const start = el("input", { id: "ra-start", type: "date", value: new Date().toISOString().slice(0, 10) });
    const owner = el("input", { id: "ra-owner", size: 16 });
    const due = el("input", { id: "ra-due", type: "date" });
    const save = el("button", { type: "button", id: "ra-save", onclick: async () => {
      save.disabled = true;
      try {
        const made = await api("/actions", {}, { method: "POST", body: {
          title: title.value.trim(), kind: kind.value, brand: a.brand, segment: { ...rest, ...where.read() }, aspect: a.aspect || null,
          started_at: `${start.value}T00:00:00Z`, owner: owner.value.trim() || null,
          due_at: due.value ? `${due.value}T00:00:00Z` : null, alert_ids: [a.id] } });
        location.href = R.href(`/dashboard/actions/${made.id}`);
      } catch (e) { R.banner(e.message); save.disabled = false; }
    } }, t("ac.record"));
    section.append(el("h3", {}, t("ac.record_title")), el("p", { class: "hint" }, `${t("al.segment")}: ${R.segmentText(seg)}${a.aspect ? " · " + R.aspectName(a.aspect) : ""}`),
      el("div", { class: "controls", id: "record-action" }, el("label", {}, t("ac.what"), " ", title), el("label", {}, t("ac.kind"), " ", kind),
         ...where.nodes,
         el("label", {}, t("ac.start"), " ", start), el("label", {}, t("ac.owner"), " ", owner), el("label", {}, t("ac.due"), " ", due), save));
    return section;
  }

  window.RadarActions = { alertActions };  // the alert page's card
  Object.assign(window.RadarPages, { actions, action: actionPage });
})();
