// Feedback Radar dashboard: what the pages share (tables, KPI cards, quotes with their evidence
// marked, the correction control, model-quality tables, links to a period's items). Loaded
// after app.js and before actions.js and the pages (pages/*.js): each page registers itself in
// window.RadarPages, where app.js's render() finds the one to draw. A page takes (container,
// window) and fills the container from /v1 calls; every number links to the feedback behind it
// (the explorer with the matching filters).
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, api, num, link } = R;
  const DAY = 86400000;

  // ---- links, periods, tables, quotes --------------------------------------------------------
  function addDays(iso, days) { return new Date(new Date(iso).getTime() + days * DAY).toISOString(); }
  function periodHref(period, bucket, extra) {
    const len = bucket === "day" ? 1 : bucket === "hour" ? 1 / 24 : 7;
    return R.explorerHref({ since: period, until: addDays(period, len), days: null, ...(extra || {}) });
  }
  /** The periods of a series that lie wholly inside the window: a first week cut by the
   *  window's start holds a few items whose shares would read as a swing. */
  function whole(points, since) {
    const start = new Date(since).getTime();
    return points.filter((p, i) => i > 0 || new Date(p.period).getTime() >= start);
  }
  function netClass(x) { return x === null || x === undefined ? "" : x > 0.05 ? "pos" : x < -0.05 ? "neg" : ""; }
  function kpi(label, value, url, sub, id) {
    return el("section", { class: "card quarter" }, el("h2", {}, label),
              el("div", { class: "kpi", id }, url ? link(value, url) : value), sub ? el("div", { class: "kpi-sub" }, sub) : null);
  }
  /** An alert's region and segment, as its list and its page show them. */
  function alertWhere(a) { return [a.region, R.segmentText(a.segment)].filter((x) => x && x !== "–").join(" · ") || "–"; }
  function table(headers, rows, attrs) {
    return el("table", attrs || {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { class: h.num ? "num" : "" }, h.label ?? h)))),
              el("tbody", {}, rows));
  }
  /** Quotes with a link to each quoted item; ``correct``: a correction control on each (alerts). */
  function quoteList(quotes, cls, { correct = false } = {}) {
    if (!quotes || !quotes.length) return el("p", { class: "muted" }, "–");
    return el("ul", { class: "quotes" }, quotes.map((q) => el("li", { class: cls ? `q-${cls}` : "" },
      highlight(q.text, q.evidence ? [{ evidence: q.evidence, sentiment: cls || "neutral" }] : []), " ",
      el("span", { class: "meta" }, link(`#${q.id}`, R.explorerHref({ item: q.id }), { "data-quote": q.id })),
      correct && q.id !== null && q.id !== undefined ? correctControl(q.id, null) : null)));
  }
  /** Text with each aspect's evidence span marked (sentiment colour, aspect name on hover). */
  function highlight(text, spans) {
    const marks = [];
    for (const s of spans || []) {
      if (!s.evidence) continue;
      const at = text.indexOf(s.evidence);
      if (at < 0) continue;
      if (marks.some((m) => at < m.end && at + s.evidence.length > m.start)) continue;
      marks.push({ start: at, end: at + s.evidence.length, s });
    }
    marks.sort((a, b) => a.start - b.start);
    const out = el("span", { class: "feedback-text" });
    let pos = 0;
    for (const m of marks) {
      out.append(text.slice(pos, m.start));
      out.append(el("mark", { class: `m-${m.s.sentiment}`, title: m.s.aspect ? `${R.aspectName(m.s.aspect)} · ${t(`s.${m.s.sentiment}`)}` : null,
                              "data-aspect": m.s.aspect || null },
                    text.slice(m.start, m.end), m.s.aspect ? el("span", { class: "tag" }, R.aspectName(m.s.aspect)) : null));
      pos = m.end;
    }
    out.append(text.slice(pos));
    return out;
  }

  // ---- Corrections (the alert page's quotes, the explorer) -----------------------------------
  const SENTIMENTS = ["negative", "neutral", "positive"];
  const SIGN = { negative: "−", neutral: "○", positive: "+" };
  /** An item's stored labels as {sentiment, aspects: {id: present | absent}, aspectSentiment: {id: value}}. */
  function labelState(labels) {
    const st = { sentiment: null, aspects: {}, aspectSentiment: {}, any: (labels || []).length > 0 };
    for (const lb of labels || []) {
      if (lb.target === "sentiment") st.sentiment = lb.value;
      else if (lb.target === "aspect") st.aspects[lb.aspect] = lb.value;
      else if (lb.target === "aspect_sentiment") st.aspectSentiment[lb.aspect] = lb.value;
    }
    return st;
  }
  /** "correct" on an item: one click fixes its sentiment, adds or removes an aspect or sets an
   *  aspect's sentiment (each click is a label, POSTed at once with source "correction"). The
   *  item (for the model's reading) and its stored labels are fetched when it is first opened. */
  function correctControl(id, item) {
    const badge = el("span", { class: "badge labeled", "data-labeled": id, hidden: true }, `✓ ${t("cr.labeled")}`);
    const panel = el("div", { class: "correct-panel", "data-correct-panel": id, hidden: true });
    const open = el("button", { type: "button", class: "link", "data-correct": id, "aria-expanded": "false" }, `✎ ${t("cr.open")}`);
    const wrap = el("div", { class: "correct" }, open, " ", badge, panel);
    let it = item, st = null;
    const score = () => (it && it.score) || { sentiment: null, aspects: [] };
    function present(aid) {
      if (st.aspects[aid]) return st.aspects[aid] === "present";
      return aid in st.aspectSentiment || score().aspects.some((x) => x.aspect === aid);
    }
    /** A toggle: ``on`` as the item reads now (its label, else the model), ``labeled`` when a label says so. */
    function chip(label, on, labeled, attrs, onclick, cls) {
      return el("button", { type: "button", class: `chip ${cls || ""}${on ? " on" : ""}${labeled ? " labeled" : ""}`,
                            "aria-pressed": on ? "true" : "false", ...attrs, onclick }, label);
    }
    function draw(error) {
      const model = score();
      const sent = st.sentiment || model.sentiment;
      const rows = [el("div", { class: "cr-row" }, el("span", { class: "cr-label" }, t("cr.sentiment")),
        SENTIMENTS.map((v) => chip(t(`s.${v}`), sent === v, st.sentiment === v, { "data-fix-sentiment": v },
                                   () => post([{ target: "sentiment", value: v }]), `chip-${v}`)))];
      rows.push(el("div", { class: "cr-row" }, el("span", { class: "cr-label" }, t("cr.aspects")),
        R.CFG.aspects.map((a) => { const on = present(a.id); return chip(R.aspectName(a.id), on, a.id in st.aspects, { "data-fix-aspect": a.id },
          () => post([{ target: "aspect", aspect: a.id, value: on ? "absent" : "present" }])); })));
      const tagged = R.CFG.aspects.filter((a) => present(a.id));
      if (tagged.length) {
        rows.push(el("div", { class: "cr-row" }, el("span", { class: "cr-label" }, t("cr.aspect_sentiment")),
          tagged.map((a) => {
            const m = model.aspects.find((x) => x.aspect === a.id);
            const cur = st.aspectSentiment[a.id] || (m ? m.sentiment : null);
            return el("span", { class: "cr-aspect" }, R.aspectName(a.id), " ", SENTIMENTS.map((v) => chip(SIGN[v],
              cur === v, st.aspectSentiment[a.id] === v, { "data-fix-aspect-sentiment": `${a.id}:${v}`, title: `${R.aspectName(a.id)}: ${t(`s.${v}`)}` },
              () => post([{ target: "aspect_sentiment", aspect: a.id, value: v }]), `chip-${v} mini`)));
          })));
      }
      if (error) rows.push(el("p", { class: "error", role: "alert" }, error));
      panel.replaceChildren(...rows);
      badge.hidden = !st.any;
      wrap.dataset.labeled = st.any ? "1" : "0";
    }
    async function post(labels) {
      for (const b of panel.querySelectorAll("button")) b.disabled = true;
      try {
        const res = await api(`/feedback/${id}/labels`, {}, { method: "POST", body: { labels, source: "correction" } });
        st = labelState(res.labels);
        draw();
        wrap.dataset.saved = String(Number(wrap.dataset.saved || "0") + 1);
      } catch (e) { draw(e.message); }
    }
    open.addEventListener("click", async () => {
      if (!panel.hidden) { panel.hidden = true; open.setAttribute("aria-expanded", "false"); open.textContent = `✎ ${t("cr.open")}`; return; }
      open.disabled = true;
      try {
        const [got, labels] = await Promise.all([it ? it : api(`/feedback/${encodeURIComponent(id)}`), api(`/feedback/${encodeURIComponent(id)}/labels`)]);
        it = got;
        st = labelState(labels.labels);
        draw();
      } catch (e) { st = st || labelState([]); panel.replaceChildren(el("p", { class: "error", role: "alert" }, e.message)); }
      open.disabled = false;
      panel.hidden = false;
      open.setAttribute("aria-expanded", "true");
      open.textContent = `✎ ${t("cr.close")}`;
    });
    return wrap;
  }

  // ---- model quality (the Label and Models pages) --------------------------------------------
  const fig = (x, digits = 1) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
  /** "pos" when the team's figure beats the generic one, "neg" when it is worse (``lower``: lower is better, as for ECE). */
  function betterClass(g, tm, lower) {
    return g === null || g === undefined || tm === null || tm === undefined || g === tm ? "" : (tm > g) !== lower ? "pos" : "neg";
  }
  /** generic → team, coloured by which is better. */
  function versus(g, tm, { digits = 1, lower = false } = {}) {
    return el("span", { class: betterClass(g, tm, lower) }, `${fig(g, digits)} → ${fig(tm, digits)}`);
  }
  /** The team's figure, coloured against the generic one. */
  function better(g, tm, { digits = 1, lower = false } = {}) {
    return el("span", { class: betterClass(g, tm, lower) }, fig(tm, digits));
  }
  /** A team model's report, generic against team, per target (and per aspect when it has them). */
  function qualityTable(r, id) {
    const rows = [];
    const row = (target, n, name, g, tm, opts) => rows.push(el("tr", {}, el("td", {}, target), el("td", { class: "num" }, n === null ? "" : num(n)),
      el("td", {}, name), el("td", { class: "num" }, fig(g, opts && opts.digits)), el("td", { class: "num" }, better(g, tm, opts))));
    if (r.sentiment) {
      const s = r.sentiment;
      row(t("lb.sentiment"), s.n, t("q.macro_f1"), s.generic.macro_f1, s.team.macro_f1);
      row("", null, t("q.accuracy"), s.generic.accuracy, s.team.accuracy);
      row("", null, t("q.ece"), s.generic.ece, s.team.ece, { digits: 3, lower: true });
    }
    if (r.aspects) {
      const a = r.aspects;
      row(t("cr.aspects"), a.pairs, t("q.f1"), a.generic.f1, a.team.f1);
      row("", null, t("q.precision"), a.generic.precision, a.team.precision);
      row("", null, t("q.recall"), a.generic.recall, a.team.recall);
      row("", null, t("q.fp"), a.generic.false_positives, a.team.false_positives, { digits: 0, lower: true });
    }
    if (r.aspect_sentiment) {
      const s = r.aspect_sentiment;
      row(t("q.aspect_sentiment"), s.n, t("q.macro_f1"), s.generic.macro_f1, s.team.macro_f1);
    }
    const out = [table([t("q.target"), { label: t("q.n"), num: true }, "", { label: t("q.generic"), num: true },
                        { label: t("q.team"), num: true }], rows, { id })];
    const per = r.aspects && r.aspects.per_aspect;
    if (per && Object.keys(per).length) {
      out.push(el("details", {}, el("summary", {}, t("q.per_aspect")), table(
        [t("cp.aspect"), { label: t("q.n"), num: true }, { label: t("lb.present"), num: true }, { label: `${t("q.f1")} ${t("q.generic")} → ${t("q.team")}`, num: true },
         { label: `${t("q.fp")} ${t("q.generic")} → ${t("q.team")}`, num: true }],
        Object.entries(per).map(([aid, p]) => el("tr", { "data-aspect": aid }, el("td", {}, R.aspectName(aid)), el("td", { class: "num" }, num(p.labels)),
          el("td", { class: "num" }, num(p.present)), el("td", { class: "num" }, versus(p.generic.f1, p.team.f1)),
          el("td", { class: "num" }, versus(p.generic.false_positives, p.team.false_positives, { digits: 0, lower: true })))))));
    }
    return out;
  }

  window.RadarUI = { addDays, periodHref, whole, netClass, kpi, alertWhere, table, quoteList, highlight, correctControl,
                     SENTIMENTS, fig, versus, qualityTable };
  window.RadarPages = {};
})();
