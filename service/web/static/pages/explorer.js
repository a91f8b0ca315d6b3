// Feedback explorer: the items behind every number (filters in the URL), one page at a time,
// each with its evidence marked and a correction control.
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, signed } = R;
  const { table, highlight, correctControl } = window.RadarUI;

  async function explorer(box, w) {
    const q = R.query();
    const item = q.get("item");
    if (item) {
      const it = await api(`/feedback/${encodeURIComponent(item)}`);
      box.append(card(`#${it.id}`, itemTable([it])));
      return;
    }
    const sentiment = q.getAll("sentiment"), aspect = q.getAll("aspect"), attr = q.getAll("attr"), cursor = q.get("cursor");
    const disagrees = q.get("disagrees") === "true";
    const params = { ...R.apiFilters(w), sentiment, aspect, attr, limit: R.CFG.page_size, cursor, disagrees: disagrees ? "true" : null };
    const page = await api("/feedback", params);
    const controls = el("div", { class: "controls" });
    const s = el("select", { id: "ex-sentiment" }, el("option", { value: "" }, t("f.all")), ["negative", "neutral", "positive"].map((v) => el("option", { value: v }, t(`s.${v}`))));
    s.value = sentiment.length === 1 ? sentiment[0] : "";
    s.addEventListener("change", () => R.navigate({ sentiment: s.value || null, cursor: null }));
    const a = el("select", { id: "ex-aspect" }, el("option", { value: "" }, t("f.all")), R.CFG.aspects.map((x) => el("option", { value: x.id }, R.aspectName(x.id))));
    a.value = aspect.length === 1 ? aspect[0] : "";
    a.addEventListener("change", () => R.navigate({ aspect: a.value || null, cursor: null }));
    const dis = el("input", { type: "checkbox", id: "ex-disagrees" });
    dis.checked = disagrees;
    dis.addEventListener("change", () => R.navigate({ disagrees: dis.checked ? "true" : null, cursor: null }));
    controls.append(el("label", {}, t("ex.sentiment"), " ", s), el("label", {}, t("ex.aspect"), " ", a),
                    el("label", { title: t("ex.disagrees") }, dis, " ", t("ex.disagrees")));
    if (attr.length) controls.append(el("span", { class: "range" }, attr.join(" · ")));
    const pager = el("div", { class: "pager" },
      cursor ? el("button", { type: "button", class: "secondary", id: "ex-first", onclick: () => R.navigate({ cursor: null }) }, t("ex.first")) : null,
      page.next_cursor ? el("button", { type: "button", id: "ex-next", onclick: () => R.navigate({ cursor: page.next_cursor }) }, t("ex.more")) : null,
      el("span", { class: "muted", id: "ex-count" }, t("ex.count", { n: page.items.length })));
    box.append(card(t("ex.title"), controls, page.items.length ? itemTable(page.items) : el("p", { class: "muted" }, t("ex.none")), pager));
  }

  function itemTable(items) {
    const correctable = R.can("admin", "analyst");
    return table([t("ex.created"), t("f.brand"), t("f.region"), t("f.channel"), t("ex.sentiment"), t("ex.text")], items.map((it) => {
      const sc = it.score;
      return el("tr", { "data-item": it.id },
        el("td", { class: "num" }, R.date(it.created_at)), el("td", {}, R.brandName(it.brand)), el("td", {}, it.region || "–"),
        el("td", {}, `${it.channel} · ${it.source}`),
        el("td", {}, sc ? [R.sentimentBadge(sc.sentiment), el("div", { class: "muted" }, signed(sc.sentiment_score))] : "–"),
        el("td", {}, highlight(it.text, sc ? sc.aspects : []),
          el("div", { class: "muted" }, Object.entries(it.attributes || {}).map(([k, v]) => `${k}: ${v}`).join(" · "),
            it.rating !== null && it.rating !== undefined ? ` · ★ ${it.rating}/${it.rating_scale || 5}` : "", it.language ? ` · ${it.language}` : ""),
          correctable ? correctControl(it.id, it) : null));
    }), { id: "feedback-table" });
  }

  window.RadarPages.explorer = explorer;
})();
