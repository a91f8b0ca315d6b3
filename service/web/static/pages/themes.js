// Themes page: the window's themes on a map (sentiment × share) and as cards with quotes.
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, num, pct, signed, link, chartBox, chart, COLORS } = R;
  const { netClass, quoteList } = window.RadarUI;

  async function themes(box, w) {
    const f = R.apiFilters(w);
    const res = await api("/themes", f);
    const list = res.themes || [];
    if (!list.length) { box.append(card(t("th.title"), el("p", { class: "muted" }, t("th.none")))); return; }
    box.append(card(`${t("th.map")} · ${num(res.items)} ${t("ov.items")}`, chartBox("chart-themes", (node) => chart(node, [{
      type: "scatter", mode: "markers", x: list.map((x) => x.net_sentiment), y: list.map((x) => x.share),
      text: list.map((x) => x.label), customdata: list.map((x) => x.size),
      marker: { size: list.map((x) => 10 + 40 * Math.sqrt(x.share)), color: list.map((x) => (x.emerging ? "#7b3fbf" : COLORS.accent)), opacity: 0.7 },
      hovertemplate: "%{text}<br>%{customdata} " + t("th.size") + " · " + t("th.sentiment") + " %{x:.2f}<extra></extra>",
    }], { xaxis: { title: { text: t("th.sentiment") }, range: [-1.1, 1.1] }, yaxis: { title: { text: t("th.share") }, tickformat: ".0%" } },
    { onClick: (p) => { const n = document.getElementById(`theme-${list[p.pointIndex].id}`); if (n) n.scrollIntoView(); } }))));
    const grid = el("div", { class: "themes", id: "themes" });
    for (const th of list) {
      const prev = th.previous || {};
      grid.append(el("div", { class: "theme", id: `theme-${th.id}`, "data-theme": th.id },
        el("h3", {}, th.emerging ? el("span", { class: "badge emerging" }, t("th.emerging")) : null, " ", th.label),
        el("p", {}, link(`${num(th.size)} ${t("th.size")}`, R.explorerHref(th.facet ? { aspect: th.facet.aspect, sentiment: th.facet.polarity } : {}),
                        { title: t("th.facet_link") }),
          ` (${pct(th.share)}) · ${t("th.growth")} ${prev.size ?? "–"} · `,
          el("span", { class: netClass(th.net_sentiment) }, `${t("th.sentiment")} ${signed(th.net_sentiment)}`)),
        el("p", { class: "keywords" }, th.keywords.map((k) => el("span", {}, k))),
        quoteList(th.quotes, th.net_sentiment < -0.2 ? "negative" : th.net_sentiment > 0.2 ? "positive" : null)));
    }
    box.append(card(t("th.title"), grid));
  }

  window.RadarPages.themes = themes;
})();
