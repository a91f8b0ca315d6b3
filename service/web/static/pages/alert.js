// One alert's page: its facts and lifecycle buttons, its series against the expected band,
// drivers, quotes, the actions answering it (actions.js) and its history.
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, num, pct, signed, link, chartBox, chart, COLORS } = R;
  const { addDays, periodHref, table, quoteList, alertWhere } = window.RadarUI;

  /** The alert's own series: the observed rate (or gap) per period against what was expected,
   *  with the 95% band the detector judged it by and the periods that broke out of it. */
  function alertSeries(a) {
    const s = a.details.series || [];
    if (!s.length) return null;
    const x = s.map((p) => p.period);
    let y, lo, hi, expected = a.details.expected ?? a.baseline;
    if ("gap" in s[0]) {
      y = s.map((p) => p.gap);
      lo = s.map((p) => (p.se === null || expected === null ? null : expected - 1.96 * p.se));
      hi = s.map((p) => (p.se === null || expected === null ? null : expected + 1.96 * p.se));
    } else {
      const k = s.map((p) => p.negative_mentions ?? p.matches ?? 0);
      y = s.map((p, i) => (p.items ? k[i] / p.items : null));
      const band = (n, sign) => (n && expected !== null ? Math.min(1, Math.max(0, expected + sign * 1.96 * Math.sqrt(expected * (1 - expected) / n))) : null);
      lo = s.map((p) => band(p.items, -1));
      hi = s.map((p) => band(p.items, 1));
    }
    const stored = a.details.band;  // the band stored at detection: the one the e-mail chart draws too
    if (Array.isArray(stored) && stored.length === s.length) {
      lo = stored.map((b) => b.lower);
      hi = stored.map((b) => b.upper);
    }
    const onset = a.onset ? new Date(a.onset).getTime() : null;
    const breach = x.map((p, i) => (onset !== null && new Date(p).getTime() >= onset && y[i] !== null && hi[i] !== null &&
                                    (y[i] > hi[i] || y[i] < lo[i]) ? y[i] : null));
    return { x, y, lo, hi, expected, breach, onset: a.onset, gap: "gap" in s[0] };
  }

  async function alertPage(box, w) {
    const id = R.CFG.alert_id;
    const a = await api(`/alerts/${id}`);
    // the alert's segment as explorer filters: its fields (not the quoted item or the rival
    // brand of a competitor gap, which name no segment of ours), brand and region, from the onset
    const { item, competitor, ...fields } = a.segment || {};
    const scope = (extra) => R.segmentParams({ ...fields, brand: a.brand, region: a.region, ...extra });
    const when = a.onset ? { since: a.onset, until: addDays(a.last_detected_at, 7), days: null } : {};
    const aspect = a.aspect || null;
    const itemsHref = item ? R.explorerHref({ item }) : R.explorerHref({ ...scope(), aspect, ...when });
    const head = el("section", { class: "card", id: "alert-head" },
      el("p", {}, link(`← ${t("al.back")}`, R.href("/dashboard/alerts"))),
      el("h2", {}, R.severityBadge(a.severity), " ", el("span", { class: `badge st-${a.status}`, id: "alert-status" }, t(`al.${a.status}`)), " ", a.title),
      el("dl", { class: "facts" },
        [[t("al.type"), a.type], [t("f.brand"), R.brandName(a.brand || "–")], [t("al.segment"), alertWhere(a)],
         [t("al.baseline"), a.baseline === null ? "–" : a.metric.includes("rate") || a.metric.includes("share") ? pct(a.baseline) : signed(a.baseline)],
         [t("al.observed"), a.metric.includes("rate") || a.metric.includes("share") ? pct(a.observed) : signed(a.observed)],
         [t("al.confidence"), a.confidence === null ? "–" : pct(a.confidence)], [t("al.onset"), R.date(a.onset)],
         [t("al.detected"), R.datetime(a.first_detected_at)], [t("al.deadline"), R.datetime(a.deadline_at)]]
          .map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))),
      el("div", { class: "actions" }, actionButtons(a)),
      el("p", {}, link(t("al.items"), itemsHref, { id: "alert-items" })));
    box.append(head);

    const s = alertSeries(a);
    if (s) {
      box.append(card(t("al.series"), chartBox("chart-alert", (node) => chart(node, [
        { x: s.x, y: s.hi, mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip", connectgaps: false },
        { x: s.x, y: s.lo, mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: COLORS.band, name: t("al.band"),
          hovertemplate: "%{x|%Y-%m-%d} " + t("al.band") + ": %{y:.3f}<extra></extra>" },
        { x: s.x, y: s.x.map(() => s.expected), mode: "lines", line: { color: COLORS.accent, dash: "dash" }, name: t("al.baseline"),
          hovertemplate: "%{y:.3f}<extra></extra>" },
        { x: s.x, y: s.y, mode: "lines+markers", line: { color: COLORS.negative }, name: t("al.history_line"),
          hovertemplate: "%{x|%Y-%m-%d}: %{y:.3f}<extra></extra>" },
        { x: s.x, y: s.breach, mode: "markers", marker: { color: COLORS.breach, size: 12, symbol: "diamond" }, name: t("al.breach"),
          hovertemplate: "%{x|%Y-%m-%d} " + t("al.breach") + ": %{y:.3f}<extra></extra>" },
      ], { xaxis: { type: "date" }, yaxis: { tickformat: s.gap ? "+.2f" : ".0%", fixedrange: true },
           shapes: s.onset ? [{ type: "line", x0: s.onset, x1: s.onset, yref: "paper", y0: 0, y1: 1, line: { color: COLORS.muted, dash: "dot" } }] : [] },
      { onClick: (p) => { location.href = periodHref(p.x, "week", { ...scope(), aspect }); } }))));
    }
    const drivers = a.details.drivers || [];
    if (drivers.length) {
      box.append(el("section", { class: "card half" }, el("h2", {}, t("al.drivers")),
        table([t("sg.segment"), { label: t("ov.prev"), num: true }, { label: t("ov.now"), num: true }, { label: "/ wk", num: true }],
          drivers.map((d) => el("tr", {}, el("td", {}, link(`${d.dimension}: ${d.value}`,
              R.explorerHref({ ...scope({ [d.dimension]: d.value }), aspect, ...when }))),
            el("td", { class: "num" }, num(d.before)), el("td", { class: "num" }, num(d.after)), el("td", { class: "num" }, signed(d.growth_per_week, 1)))))));
    }
    const quotes = a.details.quotes || [];
    const qc = el("section", { class: `card ${drivers.length ? "half" : ""}`, id: "alert-quotes" }, el("h2", {}, t("al.quotes")),
      quoteList(quotes, a.type === "competitor_gap" ? null : "negative", { correct: R.can("admin", "analyst") }));
    if ((a.details.phrases || []).length) qc.append(el("p", { class: "keywords" }, a.details.phrases.map((p) => el("span", {}, p))));
    box.append(qc);
    if ((a.details.also || []).length) {
      box.append(card(t("al.also"), el("ul", {}, a.details.also.map((x) => el("li", {}, x.title)))));
    }
    box.append(await window.RadarActions.alertActions(a));
    box.append(card(t("al.history"), table([t("al.detected"), "", "", ""], (a.events || []).map((e) =>
      el("tr", {}, el("td", {}, R.datetime(e.at)), el("td", {}, e.action), el("td", {}, e.actor || "–"), el("td", {}, e.note || ""))), { id: "alert-history" })));
  }

  function actionButtons(a) {
    const act = (status, label, id) => el("button", { type: "button", id, class: status === "open" ? "secondary" : "",
      onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          await api(`/alerts/${a.id}`, {}, { method: "PATCH", body: { status } });
          R.render();
        } catch (e) { R.banner(e.message); ev.target.disabled = false; }
      } }, label);
    const out = [];
    if (!R.can("admin", "analyst")) return out;
    if (a.status === "open") out.push(act("acknowledged", t("al.ack"), "alert-ack"));
    if (a.status !== "resolved") out.push(act("resolved", t("al.resolve"), "alert-resolve"));
    if (a.status === "resolved") out.push(act("open", t("al.reopen"), "alert-reopen"));  // open → acknowledged → resolved → open
    return out;
  }

  window.RadarPages.alert = alertPage;
})();
