// The dashboard's pages. Each takes (container, window) and fills the container from /v1 calls;
// every number links to the feedback behind it (the explorer with the matching filters).
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, num, pct, signed, link, chartBox, chart, COLORS } = R;
  const DAY = 86400000;

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

  // ---- Overview ------------------------------------------------------------------------------
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

  // ---- Alerts --------------------------------------------------------------------------------
  async function alerts(box, w) {
    const q = R.query();
    const status = q.getAll("status"), severity = q.getAll("severity"), type = q.getAll("type");
    const res = await api("/alerts", { status, severity, type, brand: w.brand, region: w.region, limit: 200 });
    const controls = el("div", { class: "controls" });
    const pick = (name, values, current, label) => {
      const s = el("select", { id: `al-${name}` }, el("option", { value: "" }, t("f.all")),
                   values.map((v) => el("option", { value: v }, label(v))));
      s.value = current.length === 1 ? current[0] : "";
      s.addEventListener("change", () => R.navigate({ [name]: s.value || null }));
      return el("label", {}, t(`al.${name}`), " ", s);
    };
    controls.append(pick("status", ["open", "acknowledged", "resolved"], status, (v) => t(`al.${v}`)),
                    pick("severity", ["L1", "L2", "L3"], severity, (v) => t(`sev.${v}`)),
                    pick("type", ["preference_shift", "negative_surge", "crisis_spike", "competitor_gap", "severe_complaint"], type, (v) => v));
    const rows = res.alerts.map((a) => el("tr", { class: "clickable", "data-alert": a.id, onclick: (ev) => { if (!ev.target.closest("a")) location.href = R.href(`/dashboard/alerts/${a.id}`); } },
      el("td", {}, R.severityBadge(a.severity)),
      el("td", {}, el("span", { class: `badge st-${a.status}` }, t(`al.${a.status}`))),
      el("td", {}, link(a.title, R.href(`/dashboard/alerts/${a.id}`))),
      el("td", {}, R.brandName(a.brand || "–")),
      el("td", {}, [a.region, R.segmentText(a.segment)].filter((x) => x && x !== "–").join(" · ") || "–"),
      el("td", { class: "num" }, R.date(a.onset)), el("td", { class: "num" }, R.date(a.last_detected_at))));
    box.append(card(`${t("al.title")} (${res.alerts.length}${res.next_offset ? "+" : ""})`, controls,
      rows.length ? table([t("al.severity"), t("al.status"), "", t("f.brand"), t("al.segment"), { label: t("al.onset"), num: true },
                           { label: t("al.detected"), num: true }], rows, { id: "alerts-table" }) : el("p", { class: "muted" }, t("al.none"))));
  }

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
        [[t("al.type"), a.type], [t("f.brand"), R.brandName(a.brand || "–")], [t("al.segment"), [a.region, R.segmentText(a.segment)].filter((x) => x && x !== "–").join(" · ") || "–"],
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

  // ---- Trends --------------------------------------------------------------------------------
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

  // ---- Segments ------------------------------------------------------------------------------
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

  // ---- Themes --------------------------------------------------------------------------------
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

  // ---- Competitors ---------------------------------------------------------------------------
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

  // ---- Feedback explorer ---------------------------------------------------------------------
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

  // ---- Corrections ---------------------------------------------------------------------------
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


  // ---- Taxonomy ------------------------------------------------------------------------------
  /** Edit one aspect (names, description, examples, rules), preview what it would tag among the
   *  stored items (POST /v1/taxonomy/preview, the caller's scope), save (admins; PUT /v1/taxonomy). */
  async function taxonomy(box, w) {
    const doc = await api("/taxonomy");
    const tax = doc.taxonomy;
    const q = R.query();
    const NEW = "__new__";
    const chosen = q.get("aspect") || (tax.aspects[0] && tax.aspects[0].id);
    const current = tax.aspects.find((a) => a.id === chosen);
    const a = current || { id: "", names: { en: "", zh: "" }, description: "", examples: [], kind: "topic", rules: null };
    const pick = el("select", { id: "tx-aspect" }, tax.aspects.map((x) => el("option", { value: x.id }, `${R.aspectName(x.id)} (${x.id})`)),
                    el("option", { value: NEW }, t("tx.new")));
    pick.value = current ? current.id : NEW;
    pick.addEventListener("change", () => R.navigate({ aspect: pick.value }));
    const lines = (xs) => (xs || []).join("\n");
    const rules = a.rules || { include: {}, exclude: {} };
    const field = (id, label, node) => el("label", { class: "field" }, el("span", {}, label), node);
    const input = (id, value) => el("input", { id, value: value || "", type: "text" });
    const area = (id, value, rows) => el("textarea", { id, rows: rows || 3 }, value || "");
    const form = el("div", { class: "tx-form" },
      field("tx-id", t("tx.id"), input("tx-id", a.id)),
      field("tx-name-en", t("tx.name_en"), input("tx-name-en", a.names.en)),
      field("tx-name-zh", t("tx.name_zh"), input("tx-name-zh", a.names.zh)),
      field("tx-kind", t("tx.kind"), (() => { const k = el("select", { id: "tx-kind" }, ["topic", "severity"].map((v) => el("option", { value: v }, t(`tx.kind_${v}`)))); k.value = a.kind || "topic"; return k; })()),
      field("tx-description", t("tx.description"), area("tx-description", a.description, 2)),
      field("tx-examples", t("tx.examples"), area("tx-examples", lines(a.examples), 5)),
      field("tx-include-en", t("tx.include_en"), area("tx-include-en", lines(rules.include.en))),
      field("tx-include-zh", t("tx.include_zh"), area("tx-include-zh", lines(rules.include.zh))),
      field("tx-exclude-en", t("tx.exclude_en"), area("tx-exclude-en", lines((rules.exclude || {}).en))),
      field("tx-exclude-zh", t("tx.exclude_zh"), area("tx-exclude-zh", lines((rules.exclude || {}).zh))));
    const val = (id) => document.getElementById(id).value;
    const list = (id) => val(id).split("\n").map((x) => x.trim()).filter(Boolean);
    function draft() {
      const id = val("tx-id").trim();
      const inc = {}, exc = {};
      for (const l of ["en", "zh"]) {
        if (list(`tx-include-${l}`).length) inc[l] = list(`tx-include-${l}`);
        if (list(`tx-exclude-${l}`).length) exc[l] = list(`tx-exclude-${l}`);
      }
      const names = {};
      if (val("tx-name-en").trim()) names.en = val("tx-name-en").trim();
      if (val("tx-name-zh").trim()) names.zh = val("tx-name-zh").trim();
      const edited = { ...(current || {}), id, names, description: val("tx-description").trim(), examples: list("tx-examples"),
                       kind: val("tx-kind"), rules: Object.keys(inc).length ? { ...(rules || {}), include: inc, exclude: exc } : null };
      const aspects = tax.aspects.map((x) => (current && x.id === current.id ? edited : x));
      if (!current) aspects.push(edited);
      return { id, taxonomy: { ...tax, aspects } };
    }
    const out = el("div", { id: "tx-result" });
    const run = el("button", { type: "button", id: "tx-preview" }, t("tx.preview"));
    run.addEventListener("click", async () => {
      run.disabled = true;
      out.replaceChildren(el("p", { class: "loading" }, t("loading")));
      try {
        const d = draft();
        const res = await api("/taxonomy/preview", R.apiFilters(w), { method: "POST", body: { taxonomy: d.taxonomy, aspect: d.id, sample: 1000, examples: 8 } });
        out.replaceChildren(previewView(res));
      } catch (e) { out.replaceChildren(el("p", { class: "error", role: "alert" }, e.message)); }
      run.disabled = false;
    });
    const actions = el("div", { class: "controls" }, run);
    if (R.can("admin")) {
      const save = el("button", { type: "button", id: "tx-save", class: "secondary" }, t("tx.save"));
      save.addEventListener("click", async () => {
        save.disabled = true;
        try {
          const d = draft();
          const res = await api("/taxonomy", {}, { method: "PUT", body: { taxonomy: d.taxonomy } });
          R.banner(t("tx.saved", { n: res.stale_items }));
        } catch (e) { R.banner(e.message); }
        save.disabled = false;
      });
      actions.append(save);
    }
    box.append(card(t("tx.title"), el("div", { class: "controls" }, el("label", {}, t("tx.aspect"), " ", pick)),
                    el("p", { class: "muted" }, t("tx.hint")), form, actions), out);
  }

  function previewView(res) {
    const a = res.aspects[0];
    if (!a) return el("p", { class: "muted" }, t("empty"));
    const r = a.by_reason;
    const item = (m) => el("li", { "data-preview-item": m.id },
      highlight(m.text, m.evidence ? [{ evidence: m.evidence, sentiment: "neutral", aspect: null }] : []), " ",
      el("span", { class: "meta" }, m.reason ? `${m.reason}${m.rule ? ` · ${m.rule}` : ""} · ` : "", `p=${m.model_probability.toFixed(2)} `,
         link(`#${m.id}`, R.explorerHref({ item: m.id }))));
    const ul = (xs, id) => xs.length ? el("ul", { class: "quotes", id }, xs.map(item)) : el("p", { class: "muted", id }, "–");
    return el("div", { class: "grid" },
      kpi(t("tx.tagged"), `${a.tagged} / ${res.sample}`, null, `${pct(a.share)} · ≈ ${a.estimated_in_scope} / ${res.in_scope}`, "tx-tagged"),
      kpi(t("tx.reasons"), `${r.rule} / ${r.model} / ${r["rule+model"]}`, null, t("tx.reasons_hint"), "tx-reasons"),
      kpi(t("tx.change"), a.change.new_aspect ? t("tx.is_new") : `${a.change.before} → ${a.tagged}`, null,
          `+${a.change.gained} −${a.change.lost}`, "tx-change"),
      kpi(t("tx.threshold"), a.threshold.toFixed(3), null, a.sources.join(" + "), "tx-threshold"),
      card(t("tx.matches"), ul(a.matches, "tx-matches")),
      card(t("tx.just_tagged"), ul(a.borderline.just_tagged, "tx-just-tagged")),
      card(t("tx.just_missed"), ul(a.borderline.just_missed, "tx-just-missed")),
      card(t("tx.overlap"), Object.keys(a.overlap).length
        ? table([t("tx.aspect"), { label: t("tx.items"), num: true }], Object.entries(a.overlap).sort((x, y) => y[1] - x[1])
            .map(([k, n]) => el("tr", {}, el("td", {}, R.aspectName(k)), el("td", { class: "num" }, String(n)))), { id: "tx-overlap" })
        : el("p", { class: "muted", id: "tx-overlap" }, "–")));
  }


  // ---- Label: the labeling queue ---------------------------------------------------------------
  const QUEUE_PAGE = 20;
  let labelKeys = null;  // the Label page's keyboard handler (one at a time across re-renders)

  /** One letter per aspect, from its English name (then any free letter): unique, never 1-3. */
  function aspectKeys(aspects) {
    const used = new Set(), out = {};
    for (const a of aspects) {
      const name = ((a.names && a.names.en) || a.name || a.id).toLowerCase().replace(/[^a-z]/g, "");
      const k = [...name, ..."abcdefghijklmnopqrstuvwxyz"].find((c) => !used.has(c));
      if (k) { used.add(k); out[a.id] = k; }
    }
    return out;
  }
  /** A queue signal's name (an unknown one as the API names it). */
  function signalName(k) { const s = t(`sig.${k}`); return s === `sig.${k}` ? k.replaceAll("_", " ") : s; }
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

  /** The queue's next item: its text, the model's reading, why it was chosen; 1/2/3 and one
   *  letter per aspect answer it, Enter saves a full label (source "queue") and moves on. */
  async function labelPage(box, w) {
    const f = R.apiFilters(w);
    const st = { items: [], at: 0, skipped: new Set(), res: null, sentiment: null, aspects: {}, busy: false };
    async function fetchQueue() {
      const res = await api("/labeling/queue", { ...f, limit: Math.min(100, QUEUE_PAGE + st.skipped.size) });
      st.res = res;
      st.items = res.items.filter((x) => !st.skipped.has(x.id)).slice(0, QUEUE_PAGE);
      st.at = 0;
    }
    await fetchQueue();
    const aspects = st.res.aspects && st.res.aspects.length ? st.res.aspects : R.CFG.aspects;
    const keys = aspectKeys(aspects);
    const byKey = Object.fromEntries(Object.entries(keys).map(([aid, k]) => [k, aid]));
    const current = () => st.items[st.at] || null;

    const itemBox = el("div", { id: "lb-item" });
    const status = el("p", { class: "muted", id: "lb-status", "aria-live": "polite" });
    const countsBox = el("section", { class: "card half", id: "lb-counts" });
    const qualityBox = el("section", { class: "card half", id: "lb-quality" });

    function reset() {
      const it = current();
      st.sentiment = null;
      st.aspects = Object.fromEntries(aspects.map((a) => [a.id, !!(it && it.aspects.includes(a.id))]));
    }
    function drawChoices() {
      for (const b of itemBox.querySelectorAll("[data-sentiment]")) {
        const on = b.dataset.sentiment === st.sentiment;
        b.classList.toggle("on", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      }
      for (const b of itemBox.querySelectorAll("[data-aspect]")) {
        const on = !!st.aspects[b.dataset.aspect];
        b.classList.toggle("on", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      }
      const s = itemBox.querySelector("#lb-chosen");
      if (s) s.textContent = st.sentiment ? t(`s.${st.sentiment}`) : t("lb.unset");
    }
    function drawItem() {
      const it = current();
      if (!it) {
        itemBox.replaceChildren(el("p", { class: "muted", id: "lb-done" }, t("lb.done")));
        return;
      }
      const sig = it.signals || {};
      itemBox.replaceChildren(
        el("p", { class: "lb-text", id: "lb-text", "data-item": it.id, lang: it.language || null }, it.text),
        el("p", { class: "muted" }, link(`#${it.id}`, R.explorerHref({ item: it.id }), { id: "lb-link" }), it.language ? ` · ${it.language}` : "",
           ` · ${t("lb.model_says")} `, R.sentimentBadge(it.sentiment), " · ",
           it.aspects.length ? `${t("lb.tags")}: ${it.aspects.map(R.aspectName).join(", ")}` : t("lb.no_tags")),
        el("div", { class: "cr-row" }, el("span", { class: "cr-label" }, t("lb.sentiment")),
          SENTIMENTS.map((v, i) => el("button", { type: "button", class: `chip chip-${v}`, id: `lb-s-${v}`, "data-sentiment": v, "aria-pressed": "false",
                                                 onclick: () => { setSentiment(v); } }, el("kbd", {}, String(i + 1)), " ", t(`s.${v}`))),
          el("span", { class: "muted" }, " ", el("span", { id: "lb-chosen" }))),
        el("div", { class: "cr-row" }, el("span", { class: "cr-label" }, t("lb.aspects")),
          aspects.map((a) => el("button", { type: "button", class: "chip", "data-aspect": a.id, "data-key": keys[a.id] || null, "aria-pressed": "false",
                                            title: a.kind === "severity" ? "severity" : null, onclick: () => { toggle(a.id); } },
                                keys[a.id] ? [el("kbd", {}, keys[a.id]), " "] : null, R.aspectName(a.id)))),
        el("div", { class: "actions" },
          el("button", { type: "button", id: "lb-save", onclick: () => { save(); } }, t("lb.save"), " ", el("kbd", {}, "⏎")),
          el("button", { type: "button", id: "lb-skip", class: "secondary", onclick: () => { skip(); } }, t("lb.skip"))),
        el("p", { class: "muted", id: "lb-batch" }, t("lb.batch", { i: st.at + 1, n: st.items.length, pool: num(st.res.pool) })),
        el("h3", {}, t("lb.why"), " ", el("span", { class: "muted" }, `(${t("lb.priority")} ${fig(it.priority, 3)})`)),
        el("dl", { class: "signals", id: "lb-signals" }, Object.entries(sig).map(([k, v]) => el("div", { "data-signal": k },
          el("dt", {}, signalName(k)), el("dd", {}, el("span", { class: "bar", style: `width:${Math.round(120 * Math.max(0, Math.min(1, v)))}px` }), " ", fig(v, 2))))));
      drawChoices();
    }
    function drawCounts() {
      const c = st.res.labels || { sentiment: 0, aspects: {} };
      countsBox.replaceChildren(el("h2", {}, t("lb.counts")),
        el("p", {}, `${t("lb.sentiment_labels")}: `, el("b", { id: "lb-count-sentiment" }, num(c.sentiment))),
        table([t("cp.aspect"), { label: t("lb.present"), num: true }, { label: t("lb.absent"), num: true }],
          aspects.map((a) => { const x = (c.aspects || {})[a.id] || {}; return el("tr", { "data-count": a.id }, el("td", {}, R.aspectName(a.id)),
            el("td", { class: "num" }, num(x.present || 0)), el("td", { class: "num" }, num(x.absent || 0))); }), { id: "lb-count-table" }));
    }
    function drawQuality() {
      const qy = st.res.quality;
      qualityBox.replaceChildren(el("h2", {}, t("lb.quality")));
      if (!qy) { qualityBox.append(el("p", { class: "muted" }, link(t("lb.no_model"), R.href("/dashboard/models")))); return; }
      qualityBox.append(el("p", { class: "hint" }, link(qy.model, R.href("/dashboard/models", { model: qy.model })), ` · ${R.datetime(qy.created_at)} · ${t("lb.cv")}`),
                        ...qualityTable(qy, "lb-quality-table"));
    }
    function setSentiment(v) { st.sentiment = st.sentiment === v ? null : v; drawChoices(); }
    function toggle(aid) { st.aspects[aid] = !st.aspects[aid]; drawChoices(); }
    async function next() {
      st.at += 1;
      if (st.at >= st.items.length) {
        await fetchQueue();
        drawCounts();
        drawQuality();
      }
      reset();
      drawItem();
    }
    async function save() {
      const it = current();
      if (!it || st.busy) return;
      const labels = [];
      if (st.sentiment) labels.push({ target: "sentiment", value: st.sentiment });
      for (const a of aspects) labels.push({ target: "aspect", aspect: a.id, value: st.aspects[a.id] ? "present" : "absent" });
      st.busy = true;
      for (const b of itemBox.querySelectorAll("button")) b.disabled = true;
      try {
        await api(`/feedback/${it.id}/labels`, {}, { method: "POST", body: { labels, source: "queue" } });
        const c = st.res.labels;  // counted here until the next page of the queue brings the server's
        if (st.sentiment) c.sentiment += 1;
        for (const a of aspects) {
          const x = (c.aspects[a.id] = c.aspects[a.id] || {});
          const v = st.aspects[a.id] ? "present" : "absent";
          x[v] = (x[v] || 0) + 1;
        }
        drawCounts();
        status.textContent = t("lb.saved", { id: it.id });
        await next();
      } catch (e) {
        status.replaceChildren(el("span", { class: "error", role: "alert" }, e.message));
        for (const b of itemBox.querySelectorAll("button")) b.disabled = false;
      } finally { st.busy = false; }
    }
    async function skip() {
      const it = current();
      if (!it || st.busy) return;
      st.busy = true;
      st.skipped.add(it.id);
      try {
        status.textContent = t("lb.skipped", { id: it.id });
        await next();
      } catch (e) { status.replaceChildren(el("span", { class: "error", role: "alert" }, e.message)); } finally { st.busy = false; }
    }
    if (labelKeys) document.removeEventListener("keydown", labelKeys);
    labelKeys = (ev) => {
      if (!itemBox.isConnected || ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
      const tag = ev.target && ev.target.tagName;
      if (["INPUT", "SELECT", "TEXTAREA"].includes(tag) || document.querySelector("dialog[open]")) return;
      const k = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
      if (k === "Enter") save();
      else if (["1", "2", "3"].includes(k)) setSentiment(SENTIMENTS[Number(k) - 1]);
      else if (byKey[k] && current()) toggle(byKey[k]);
      else return;
      ev.preventDefault();  // Enter on a focused button would click it as well
    };
    document.addEventListener("keydown", labelKeys);

    reset();
    drawItem();
    drawCounts();
    drawQuality();
    box.append(card(t("lb.title"), el("p", { class: "hint" }, t("lb.hint")), itemBox, status), countsBox, qualityBox);
  }

  // ---- Models: team models, training, promotion --------------------------------------------------
  const JOB_KEY = "radar.train_job";
  let followSeq = 0;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  /** Which model scores new items, the team models with their headline figures (generic →
   *  team), a training run followed to its end, promote (refusals shown, force offered) and roll back. */
  async function models(box, w) {
    const msg = el("div", { id: "md-message", "aria-live": "polite" });
    const servingBox = el("section", { class: "card", id: "md-serving" });
    const listBox = el("section", { class: "card", id: "md-models" });
    const detailBox = el("div", { id: "md-detail", class: "wide" });
    const jobBox = el("div", { id: "md-job" });
    const nameInput = el("input", { type: "text", id: "md-name", placeholder: "team-…", maxlength: "40", autocomplete: "off" });
    const trainBtn = el("button", { type: "button", id: "md-train" }, t("md.start"));

    function say(text, { error = false, extra = null } = {}) {
      msg.replaceChildren(el("p", { class: error ? "error" : "ok", role: error ? "alert" : null, id: error ? "md-error" : "md-ok" }, text),
                          ...(extra ? [extra] : []));
    }
    async function act(path, body) {
      for (const b of document.querySelectorAll("#md-serving button, #md-models button")) b.disabled = true;
      try {
        const s = await api(path, {}, { method: "POST", body });
        say(t("md.switched", { model: s.model }));
        return true;
      } catch (e) {
        return e;
      } finally {
        await refresh().catch((e) => say(e.message, { error: true }));
      }
    }
    async function promote(name, force = false) {
      const out = await act(`/models/${encodeURIComponent(name)}/promote`, { force });
      if (out === true) return;
      const offer = out.status === 409 && name !== "generic" && !force
        ? el("button", { type: "button", class: "secondary", id: "md-force", "data-force": name, onclick: () => promote(name, true) }, `${t("md.force")}: ${name}`)
        : null;
      say(out.message, { error: true, extra: offer });
    }
    async function rollback() {
      const out = await act("/models/rollback", undefined);
      if (out !== true) say(out.message, { error: true });
    }
    function drawServing(res) {
      const s = res.serving;
      servingBox.replaceChildren(el("h2", {}, t("md.serving")),
        el("p", {}, el("b", { id: "md-serving-model", "data-model": s.model }, s.model === "generic" ? t("md.generic") : s.model),
           el("span", { class: "muted" }, ` · ${t("md.version")} ${s.model_version} · ${t("md.generic_version")} ${s.generic_version}`)),
        el("div", { class: "actions" },
          el("button", { type: "button", class: "secondary", id: "md-rollback", disabled: s.model === "generic", onclick: () => rollback() }, t("md.rollback")),
          el("button", { type: "button", class: "secondary", id: "md-generic", disabled: s.model === "generic", onclick: () => promote("generic") }, t("md.use_generic"))),
        msg);
    }
    function drawList(res) {
      const pick = R.query().get("model");
      listBox.replaceChildren(el("h2", {}, `${t("md.models")} (${res.models.length})`));
      if (!res.models.length) { listBox.append(el("p", { class: "muted", id: "md-none" }, t("md.none"))); return; }
      listBox.append(table([t("md.model"), t("md.created"), t("md.labels"), { label: t("md.sentiment_f1"), num: true },
                            { label: t("md.aspect_f1"), num: true }, { label: t("md.fp"), num: true },
                            { label: t("md.aspect_sentiment_f1"), num: true }, { label: t("md.size"), num: true }, ""],
        res.models.map((m) => {
          const r = m.report || {}, lab = (m.params || {}).labels || {};
          const pairs = Object.values(lab.aspects || {}).reduce((n, x) => n + (x.present || 0) + (x.absent || 0), 0);
          const s = r.sentiment, a = r.aspects, as = r.aspect_sentiment;
          return el("tr", { "data-model": m.name, class: m.serving ? "serving" : "" },
            el("td", {}, el("button", { type: "button", class: "link", "data-detail": m.name, onclick: () => detail(m.name) }, m.name),
               m.serving ? [" ", el("span", { class: "badge serving" }, t("md.serving_badge"))] : null),
            el("td", { class: "num" }, R.datetime(m.created_at)),
            el("td", {}, t("md.label_counts", { items: num(lab.items), s: num(lab.sentiment), a: num(pairs) })),
            el("td", { class: "num", "data-figure": "sentiment" }, s ? versus(s.generic.macro_f1, s.team.macro_f1) : "–"),
            el("td", { class: "num", "data-figure": "aspects" }, a ? versus(a.generic.f1, a.team.f1) : "–"),
            el("td", { class: "num", "data-figure": "false_positives" }, a ? versus(a.generic.false_positives, a.team.false_positives, { digits: 0, lower: true }) : "–"),
            el("td", { class: "num" }, as ? versus(as.generic.macro_f1, as.team.macro_f1) : "–"),
            el("td", { class: "num" }, `${num(Math.round(m.size_bytes / 1024))} KB`),
            el("td", {}, m.serving ? null : el("button", { type: "button", "data-promote": m.name, onclick: () => promote(m.name) }, t("md.promote"))));
        }), { id: "md-table" }));
      if (pick && res.models.some((m) => m.name === pick)) detail(pick);
    }
    async function detail(name) {
      try {
        const m = await api(`/models/${encodeURIComponent(name)}`);
        detailBox.replaceChildren(el("section", { class: "card", id: "md-report", "data-model": name },
          el("h2", {}, `${name} · ${R.datetime(m.created_at)}`),
          el("p", { class: "hint" }, `${t("lb.cv")} · ${m.report.items} · ${m.report.folds} folds · sha256 ${m.sha256.slice(0, 12)}`),
          ...qualityTable(m.report, "md-report-table")));
      } catch (e) { detailBox.replaceChildren(el("p", { class: "error", role: "alert" }, e.message)); }
    }
    async function refresh() {
      const res = await api("/models");
      drawServing(res);
      drawList(res);
    }
    function drawJob(job, error) {
      jobBox.dataset.status = job ? job.status : "failed";
      if (error || !job) { jobBox.replaceChildren(el("p", { class: "error", role: "alert" }, error)); return; }
      const parts = [];
      if (job.status === "running") {
        parts.push(el("p", {}, t("md.job_running", { stage: job.stage, done: num(job.done), total: num(job.total) })),
                   el("progress", { id: "md-progress", max: String(Math.max(job.total, 1)), value: String(job.done) }));
      } else if (job.status === "succeeded") {
        parts.push(el("p", { class: "ok" }, t("md.job_succeeded", { name: job.model })));
      } else {
        parts.push(el("p", { class: "error", role: "alert" }, t("md.job_failed", { error: job.error })));
      }
      jobBox.replaceChildren(...parts);
    }
    async function follow(job) {
      const seq = ++followSeq;
      trainBtn.disabled = true;
      try {
        for (;;) {
          drawJob(job);
          if (job.status !== "running") break;
          await sleep(1000);
          if (seq !== followSeq) return;
          job = await api(`/models/jobs/${encodeURIComponent(job.id)}`);
        }
        sessionStorage.removeItem(JOB_KEY);
        if (job.status === "succeeded") await refresh();
      } finally { if (seq === followSeq) trainBtn.disabled = false; }
    }
    trainBtn.addEventListener("click", async () => {
      trainBtn.disabled = true;
      try {
        const name = nameInput.value.trim();
        const job = await api("/models/train", {}, { method: "POST", body: name ? { name } : {} });
        sessionStorage.setItem(JOB_KEY, job.id);
        await follow(job);
      } catch (e) { drawJob(null, e.message); trainBtn.disabled = false; }
    });

    await refresh();
    box.append(servingBox,
      card(t("md.train"), el("p", { class: "hint" }, t("md.train_hint")),
        el("div", { class: "controls" }, el("label", {}, t("md.name"), " ", nameInput), trainBtn), jobBox),
      listBox, detailBox);
    const pending = sessionStorage.getItem(JOB_KEY);  // a run started before this page was drawn
    if (pending) api(`/models/jobs/${encodeURIComponent(pending)}`).then(follow).catch(() => sessionStorage.removeItem(JOB_KEY));
  }

  window.RadarPages = { overview, alerts, alert: alertPage, trends, segments, themes, competitors, explorer, taxonomy,
                        label: labelPage, models, actions: window.RadarActions.actions,
                        action: window.RadarActions.action };
})();
