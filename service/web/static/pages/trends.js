// Trends page: one aspect's or tracked phrase's metric per period with a forecast, its slope
// and the shifts found in it.
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, signed, link, chartBox, chart, COLORS } = R;
  const { periodHref, whole } = window.RadarUI;

  async function trends(box, w) {
    const q = R.query();
    const aspect = q.get("aspect") || null, phrase = q.get("phrase_id") || null;
    const metric = q.get("metric") || "negative_share", bucket = q.get("bucket") || "week";
    const horizon = Number(q.get("horizon") || 4);
    const attr = q.getAll("attr");
    const f = { ...R.apiFilters(w), attr };
    const scope = { ...f, bucket, aspect: phrase ? null : aspect, phrase_id: phrase };
    const [phrases, tr, fc] = await Promise.all([
      api("/tracked-phrases"), api("/trends", scope),
      api("/forecast", { ...scope, metric, horizon, alpha: 0.05, seed: 0 }).catch((e) => ({ error: e.message }))]);
    const controls = el("div", { class: "controls" });
    const sel = (id, label, options, value, onchange) => {
      const s = el("select", { id }, options.map(([v, l]) => el("option", { value: v }, l)));
      s.value = value;
      s.addEventListener("change", () => onchange(s.value));
      controls.append(el("label", {}, label, " ", s));
    };
    sel("tr-aspect", t("tr.aspect"), [["", t("tr.all")], ...R.CFG.aspects.map((a) => [a.id, R.aspectName(a.id)])], phrase ? "" : aspect || "",
        (v) => R.navigate({ aspect: v || null, phrase_id: null }));
    sel("tr-phrase", t("tr.phrase"), [["", "–"], ...phrases.map((p) => [String(p.id), p.phrase])], phrase || "",
        (v) => R.navigate({ phrase_id: v || null, aspect: null }));
    sel("tr-metric", t("tr.metric"), ["negative_share", "volume", "mean_sentiment", "share_of_voice"].map((m) => [m, t(`m.${m}`)]), metric,
        (v) => R.navigate({ metric: v }));
    sel("tr-bucket", t("tr.bucket"), [["week", t("tr.week")], ["day", t("tr.day")]], bucket, (v) => R.navigate({ bucket: v }));
    sel("tr-horizon", t("tr.horizon"), [1, 2, 4, 8, 12].map((h) => [String(h), String(h)]), String(horizon), (v) => R.navigate({ horizon: v }));
    const segs = await segmentChoices();
    sel("tr-segment", t("al.segment"), [["", t("f.all")], ...segs.map((s) => [s, s])], attr.length === 1 ? attr[0] : "",
        (v) => R.navigate({ attr: v || null }));

    const pts = whole(tr.points, w.since);
    const value = (p) => (metric === "volume" ? p.mentions : p[metric]);
    const extra = { aspect: phrase ? null : aspect, attr };
    const traces = [{ x: pts.map((p) => p.period), y: pts.map(value), mode: "lines+markers", name: t(`m.${metric}`),
                      line: { color: COLORS.accent }, customdata: pts.map((p) => p.mentions),
                      hovertemplate: "%{x|%Y-%m-%d}: %{y:.3f} (n=%{customdata})<extra></extra>" }];
    if (fc && fc.forecast) {
      const fx = fc.forecast.map((p) => p.period);
      traces.push({ x: fx, y: fc.forecast.map((p) => p.upper), mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" },
        { x: fx, y: fc.forecast.map((p) => p.lower), mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: COLORS.band,
          name: t("tr.interval", { p: Math.round(100 * (1 - fc.alpha)) }), hovertemplate: "%{x|%Y-%m-%d}: %{y:.3f}<extra></extra>" },
        { x: fx, y: fc.forecast.map((p) => p.mean), mode: "lines+markers", line: { color: COLORS.accent, dash: "dash" }, name: t("al.forecast"),
          hovertemplate: "%{x|%Y-%m-%d}: %{y:.3f}<extra></extra>" });
    }
    const shifts = tr.shifts || [];
    const title = `${phrase ? `“${(phrases.find((p) => String(p.id) === phrase) || {}).phrase}”` : aspect ? R.aspectName(aspect) : t("tr.all")} · ${t(`m.${metric}`)}`;
    box.append(card(title, controls, chartBox("chart-trends", (node) => chart(node, traces, {
      height: 380, xaxis: { type: "date" }, legend: { orientation: "h", y: 1.12 },
      yaxis: { tickformat: metric.endsWith("share") || metric === "share_of_voice" ? ".0%" : "", fixedrange: true },
      shapes: shifts.map((s) => ({ type: "line", x0: s.period, x1: s.period, yref: "paper", y0: 0, y1: 1, line: { color: COLORS.breach, dash: "dot" } })),
    }, { onClick: (p) => { location.href = periodHref(p.x, bucket, extra); } })),
      fc && fc.model ? el("p", { class: "hint", id: "forecast-model" }, `${fc.model} · α = ${fc.alpha} · seed ${fc.seed}`) : fc && fc.error ? el("p", { class: "hint" }, fc.error) : null));
    const slope = tr.trend[metric === "volume" ? "volume" : metric];
    box.append(el("section", { class: "card half" }, el("h2", {}, t("tr.slope")),
      slope ? el("p", { id: "trend-slope" }, `${signed(slope.per_period, 4)} [${signed(slope.lower, 4)}, ${signed(slope.upper, 4)}] · p = ${slope.p_value} · ${slope.direction}`) : "–"));
    box.append(el("section", { class: "card half" }, el("h2", {}, t("tr.shifts")),
      shifts.length ? el("ul", { id: "trend-shifts" }, shifts.map((s) => el("li", {}, link(`${R.date(s.period)} · ${t(`m.${s.metric}`)} · ${s.kind || ""}`,
        periodHref(s.period, bucket, extra))))) : el("p", { class: "muted" }, t("tr.none_shift"))));
  }

  let segmentCache = null;
  /** name:value pairs of the configured attribute dimensions (age group, tier…) for pickers. */
  async function segmentChoices() {
    if (segmentCache) return segmentCache;
    const dims = R.CFG.segment_dimensions.filter((d) => !R.FIELD_DIMS.includes(d));
    segmentCache = await R.cached("segment-values", async () => {
      const res = await Promise.all(dims.map((d) => api("/segments", { dimension: d, limit: 200 }).catch(() => null)));
      const out = [];
      res.forEach((r, i) => { if (r) for (const s of r.segments) if (s.segment[dims[i]]) out.push(`${dims[i]}:${s.segment[dims[i]]}`); });
      return out;
    });
    return segmentCache;
  }

  window.RadarPages.trends = trends;
})();
