// Segments page: net sentiment per segment and aspect (a heat map), and the segments that
// differ significantly from the rest.
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, num, pct, signed, link, chartBox, chart, COLORS } = R;
  const { netClass, table } = window.RadarUI;

  async function segments(box, w) {
    const q = R.query();
    const dims = q.getAll("dimension").slice(0, 2);
    if (!dims.length) dims.push(R.CFG.segment_dimensions[0] || "region");
    const f = { ...R.apiFilters(w), attr: q.getAll("attr") };
    const alpha = 0.05;
    const [br, diff] = await Promise.all([api("/segments", { ...f, dimension: dims, alpha, limit: 60 }),
                                          api("/segments/differences", { ...f, dimension: dims, alpha, limit: 100 })]);
    const controls = el("div", { class: "controls" });
    const pickDim = (id, label, value, choices) => {
      const s = el("select", { id }, choices.map(([v, l]) => el("option", { value: v }, l)));
      s.value = value;
      controls.append(el("label", {}, label, " ", s));
      return s;
    };
    const d1 = pickDim("sg-dimension", t("sg.dimension"), dims[0], R.CFG.segment_dimensions.map((d) => [d, d]));
    const d2 = pickDim("sg-dimension2", "×", dims[1] || "", [["", "–"], ...R.CFG.segment_dimensions.map((d) => [d, d])]);
    const change = () => R.navigate({ dimension: [d1.value, d2.value].filter((v, i, a) => v && a.indexOf(v) === i) });
    d1.addEventListener("change", change);
    d2.addEventListener("change", change);
    const rows = br.segments.filter((x) => x.volume > 0);
    const label = (seg) => dims.map((d) => String(seg[d] ?? "–")).join(" · ");
    rows.sort((a, b) => label(a.segment).localeCompare(label(b.segment)));
    const aspects = R.CFG.aspects.map((a) => a.id).filter((a) => rows.some((r) => r.aspects.some((x) => x.aspect === a)));
    const sig = new Set(diff.findings.filter((x) => x.aspect).map((x) => `${label(x.segment)}|${x.aspect}`));
    const cells = rows.map((r) => aspects.map((a) => r.aspects.find((x) => x.aspect === a)));
    const z = cells.map((row) => row.map((c) => (c && c.mentions ? c.net_sentiment.value : null)));
    const n = cells.map((row) => row.map((c) => (c ? c.mentions : 0)));
    const text = rows.map((r, i) => aspects.map((a, j) => (z[i][j] === null ? "" : `${z[i][j].toFixed(2)}${sig.has(`${label(r.segment)}|${a}`) ? " ●" : ""}`)));
    const height = Math.max(260, 60 + 34 * rows.length);
    box.append(card(t("sg.heat"), controls, el("p", { class: "hint" }, t("sg.sig", { a: alpha })),
      chartBox("chart-heat", (node) => chart(node, [{
        type: "heatmap", x: aspects.map(R.aspectName), y: rows.map((r) => label(r.segment)), z, text, texttemplate: "%{text}",
        customdata: n, zmin: -1, zmax: 1, colorscale: [[0, COLORS.negative], [0.5, "#f7f7f7"], [1, COLORS.positive]],
        hovertemplate: "%{y} · %{x}: %{z:.2f} (%{customdata} " + t("cp.mentions") + ")<extra></extra>", xgap: 2, ygap: 2,
      }], { height, margin: { l: 110, r: 20, t: 10, b: 90 }, yaxis: { autorange: "reversed", type: "category" } },
      { onClick: (p) => {
        const r = rows[p.pointIndex[0]], a = aspects[p.pointIndex[1]];
        location.href = R.explorerHref({ ...R.segmentParams(r.segment), aspect: a });
      } })),
      table([t("sg.segment"), { label: t("sg.volume"), num: true }, { label: t("ov.net"), num: true }, { label: t("ov.negative"), num: true }],
        rows.map((r) => el("tr", { "data-segment": label(r.segment) }, el("td", {}, label(r.segment)),
          el("td", { class: "num" }, link(num(r.volume), R.explorerHref(R.segmentParams(r.segment)))),
          el("td", { class: `num ${netClass(r.net_sentiment.value)}` }, signed(r.net_sentiment.value)),
          el("td", { class: "num" }, link(pct(r.sentiment.negative.value), R.explorerHref({ ...R.segmentParams(r.segment), sentiment: "negative" }))))),
        { id: "segments-table" })));
    box.append(card(`${t("sg.diff")} (${diff.significant} / ${diff.tested})`, diff.findings.length ? table(
      [t("sg.segment"), t("sg.metric"), t("cp.aspect"), { label: t("sg.value"), num: true }, { label: t("sg.rest"), num: true }, { label: "q", num: true }],
      diff.findings.map((x) => el("tr", {}, el("td", {}, R.segmentText(x.segment)), el("td", {}, t(`metric.${x.metric}`)),
        el("td", {}, x.aspect ? R.aspectName(x.aspect) : "–"),
        el("td", { class: "num" }, link(pct(x.segment_value), R.explorerHref({ ...R.segmentParams(x.segment), aspect: x.aspect || null,
          sentiment: x.metric.includes("negative") ? "negative" : x.metric.includes("positive") ? "positive" : null }))),
        el("td", { class: "num" }, pct(x.rest_value)), el("td", { class: "num" }, x.q_value.toPrecision(2)))), { id: "differences" })
      : el("p", { class: "muted" }, t("sg.none"))));
  }

  window.RadarPages.segments = segments;
})();
