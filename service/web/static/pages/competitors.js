// Competitors page: our brand's gap to each rival per aspect, the priorities, strengths and
// weaknesses with quotes on both sides.
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, num, signed, link, chartBox, chart } = R;
  const { netClass, table, quoteList } = window.RadarUI;

  async function competitors(box, w) {
    const f = R.apiFilters(w);
    delete f.brand;  // the benchmark compares every brand in scope
    const [b, p] = await Promise.all([api("/benchmark", f), api("/benchmark/priorities", f)]);
    const ours = b.our_brand;
    const rivals = [...new Set(b.gaps.map((g) => g.competitor))];
    const aspects = b.aspects;
    const traces = rivals.map((r, i) => {
      const gs = aspects.map((a) => b.gaps.find((g) => g.aspect === a && g.competitor === r && g.segment === "(all)"));
      return { type: "scatter", mode: "markers", name: r === "(competitors)" ? t("cp.pooled") : R.brandName(r),
        x: aspects.map(R.aspectName), y: gs.map((g) => (g ? g.gap : null)),
        error_y: { type: "data", symmetric: false, array: gs.map((g) => (g ? g.upper - g.gap : null)), arrayminus: gs.map((g) => (g ? g.gap - g.lower : null)) },
        customdata: gs.map((g) => (g ? [g.q_value, g.ours_mentions, g.their_mentions] : [null, 0, 0])),
        marker: { size: 11, symbol: gs.map((g) => (g && g.significant ? "circle" : "circle-open")), line: { width: 2 } },
        hovertemplate: "%{x}: %{y:+.2f} (q=%{customdata[0]}, n=%{customdata[1]}/%{customdata[2]})<extra>"
          + R.plotText(r === "(competitors)" ? t("cp.pooled") : R.brandName(r)) + "</extra>",
        offsetgroup: String(i) };
    });
    box.append(card(t("cp.gaps"), el("p", { class: "hint" }, t("cp.gap_hint")), chartBox("chart-gaps", (node) => chart(node, traces, {
      height: 380, yaxis: { title: { text: `${R.brandName(ours)} − …` }, zeroline: true, tickformat: "+.1f", fixedrange: true }, scattermode: "group",
      margin: { l: 60, r: 20, t: 10, b: 90 } },
    { onClick: (pt) => { location.href = R.explorerHref({ aspect: aspects[pt.pointIndex] }); } }))));

    const pr = (p.priorities["(all)"] || []);
    box.append(el("section", { class: "card half" }, el("h2", {}, t("cp.priorities")), pr.length ? table(
      [{ label: t("cp.rank"), num: true }, t("cp.aspect"), { label: t("cp.importance"), num: true }, { label: t("cp.deficit"), num: true }, t("cp.best"), { label: t("ov.net"), num: true }],
      pr.map((x) => el("tr", { "data-priority": x.aspect }, el("td", { class: "num" }, x.rank),
        el("td", {}, link(R.aspectName(x.aspect), R.href("/dashboard/trends", { aspect: x.aspect, brand: ours }))),
        el("td", { class: "num" }, x.importance.toFixed(3)), el("td", { class: "num" }, signed(x.deficit)),
        el("td", {}, x.versus ? R.brandName(x.versus) : "–"),
        el("td", { class: `num ${netClass(x.our_net_sentiment)}` }, link(signed(x.our_net_sentiment), R.explorerHref({ brand: ours, aspect: x.aspect }))))),
      { id: "priorities" }) : el("p", { class: "muted" }, t("cp.none"))));
    const sw = (title, items, id) => el("section", { class: "card half", id }, el("h2", {}, title), items.length ? el("div", {}, items.map((g) =>
      el("div", {}, el("h3", {}, `${R.aspectName(g.aspect)} · ${g.competitor === "(competitors)" ? t("cp.pooled") : R.brandName(g.competitor)} · `,
        link(signed(g.gap), R.explorerHref({ aspect: g.aspect })), ` [${signed(g.lower)}, ${signed(g.upper)}] q=${g.q_value}`),
      el("p", { class: "muted" }, t("cp.ours")), quoteList(g.quotes.ours, g.favours === "ours" ? "positive" : "negative"),
      g.quotes.competitor.length ? [el("p", { class: "muted" }, t("cp.theirs")), quoteList(g.quotes.competitor, g.favours === "ours" ? "negative" : "positive")] : null)))
      : el("p", { class: "muted" }, "–"));
    box.append(sw(t("cp.strengths"), b.strengths || [], "strengths"), sw(t("cp.weaknesses"), b.weaknesses || [], "weaknesses"));
  }

  window.RadarPages.competitors = competitors;
})();
