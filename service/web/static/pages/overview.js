// Overview page: the window's KPIs against the window before, the weekly trend, the aspects
// that moved most, the open alerts by severity.
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, num, pct, signed, link, chartBox, chart, COLORS } = R;
  const { periodHref, whole, kpi, table } = window.RadarUI;

  async function overview(box, w) {
    const f = R.apiFilters(w);
    const len = new Date(w.until) - new Date(w.since);
    const prevF = { ...f, since: new Date(new Date(w.since) - len).toISOString(), until: w.since };
    const [now, before, tr, alerts] = await Promise.all([
      api("/segments", { ...f, dimension: "brand" }), api("/segments", { ...prevF, dimension: "brand" }),
      api("/trends", { ...f, bucket: "week" }),
      api("/alerts", { status: ["open"], brand: f.brand, region: f.region, limit: 200 })]);
    const tot = now.total;
    box.append(
      kpi(t("ov.volume"), num(tot.volume), R.explorerHref(), `${num(before.total.volume)} ${t("ov.prev")}`, "kpi-volume"),
      kpi(t("ov.net"), signed(tot.net_sentiment.value), R.explorerHref({ sentiment: "positive" }),
          `[${signed(tot.net_sentiment.lower)}, ${signed(tot.net_sentiment.upper)}] · ${signed(before.total.net_sentiment.value)} ${t("ov.prev")}`, "kpi-net"),
      kpi(t("ov.negative"), pct(tot.sentiment.negative.value), R.explorerHref({ sentiment: "negative" }),
          `${num(tot.sentiment.negative.count)} ${t("ov.items")}`, "kpi-negative"),
      kpi(t("ov.open_alerts"), num(alerts.alerts.length), R.href("/dashboard/alerts", { status: "open" }),
          ["L1", "L2", "L3"].map((s) => `${s}: ${alerts.alerts.filter((a) => a.severity === s).length}`).join(" · "), "kpi-alerts"));

    const pts = whole(tr.points, w.since);
    box.append(card(t("ov.trend"), chartBox("chart-trend", (node) => chart(node, [
      { type: "bar", name: t("m.volume"), x: pts.map((p) => p.period), y: pts.map((p) => p.items), marker: { color: "#b8cde4" },
        hovertemplate: "%{x|%Y-%m-%d}: %{y} " + t("ov.items") + "<extra></extra>" },
      { type: "scatter", mode: "lines+markers", name: t("m.mean_sentiment"), yaxis: "y2", x: pts.map((p) => p.period),
        y: pts.map((p) => p.mean_sentiment), line: { color: COLORS.accent }, hovertemplate: "%{x|%Y-%m-%d}: %{y:.3f}<extra></extra>" },
      { type: "scatter", mode: "lines", name: t("m.negative_share"), yaxis: "y2", x: pts.map((p) => p.period),
        y: pts.map((p) => p.negative_share), line: { color: COLORS.negative, dash: "dot" }, hovertemplate: "%{x|%Y-%m-%d}: %{y:.1%}<extra></extra>" },
    ], { xaxis: { type: "date" }, yaxis: { title: { text: t("m.volume") }, fixedrange: true }, yaxis2: { overlaying: "y", side: "right", range: [-1, 1], fixedrange: true } },
    { onClick: (p) => { location.href = periodHref(p.x, "week"); } }))));

    // top movers: aspects whose net sentiment moved most against the window before
    const prevAsp = Object.fromEntries(before.total.aspects.map((a) => [a.aspect, a]));
    const movers = tot.aspects.filter((a) => prevAsp[a.aspect] && a.mentions >= 20 && prevAsp[a.aspect].mentions >= 20)
      .map((a) => ({ aspect: a.aspect, now: a.net_sentiment.value, before: prevAsp[a.aspect].net_sentiment.value, mentions: a.mentions }))
      .map((m) => ({ ...m, change: m.now - m.before })).sort((a, b) => Math.abs(b.change) - Math.abs(a.change)).slice(0, 6);
    box.append(el("section", { class: "card half" }, el("h2", {}, t("ov.movers")), el("p", { class: "hint" }, t("ov.movers_hint")),
      movers.length ? table([t("cp.aspect"), { label: t("ov.prev"), num: true }, { label: t("ov.now"), num: true }, { label: t("ov.change"), num: true }],
        movers.map((m) => el("tr", { "data-mover": m.aspect },
          el("td", {}, link(R.aspectName(m.aspect), R.href("/dashboard/trends", { aspect: m.aspect }))),
          el("td", { class: "num" }, signed(m.before)),
          el("td", { class: "num" }, link(signed(m.now), R.explorerHref({ aspect: m.aspect }))),
          el("td", { class: `num ${m.change > 0 ? "pos" : "neg"}` }, signed(m.change)))), { id: "movers" })
        : el("p", { class: "muted" }, t("empty"))));

    const bySev = ["L1", "L2", "L3"].map((s) => alerts.alerts.filter((a) => a.severity === s).length);
    const top = alerts.alerts.filter((a) => a.type !== "severe_complaint").slice(0, 5)
      .concat(alerts.alerts.filter((a) => a.type === "severe_complaint").slice(0, 3));
    box.append(el("section", { class: "card half" }, el("h2", {}, t("ov.alerts")),
      chartBox("chart-alerts", (node) => chart(node, [{ type: "bar", orientation: "h", y: ["L1", "L2", "L3"].map((s) => t(`sev.${s}`)),
        x: bySev, marker: { color: ["#b71c1c", "#e67e22", "#f1c40f"] }, hovertemplate: "%{y}: %{x}<extra></extra>" }],
        { height: 150, margin: { l: 90, r: 20, t: 4, b: 24 }, yaxis: { autorange: "reversed" } },
        { onClick: (p) => { location.href = R.href("/dashboard/alerts", { status: "open", severity: ["L1", "L2", "L3"][p.pointIndex] }); } })),
      el("ul", { class: "quotes", id: "overview-alerts" }, top.map((a) => el("li", {}, R.severityBadge(a.severity), " ",
        link(a.title, R.href(`/dashboard/alerts/${a.id}`)))))));
  }

  window.RadarPages.overview = overview;
})();
