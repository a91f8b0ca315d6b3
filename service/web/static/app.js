// Feedback Radar dashboard: the shared parts (configuration, key, filters in the URL, API
// calls, DOM and chart helpers). Pages are drawn by pages/*.js (helpers they share: ui.js)
// from /v1 endpoints only.
"use strict";

const Radar = (() => {
  const CFG = JSON.parse(document.getElementById("radar-config").textContent);
  const KEY_STORE = "radar.api_key";
  const FILTERS = ["days", "since", "until", "brand", "region", "channel", "language"];
  const WINDOWS = [7, 28, 91, 182, 365];
  const CHANNELS = ["review", "social", "complaint", "support", "survey", "other"];
  const DEFAULT_DAYS = 91;
  const COLORS = { negative: "#c0392b", neutral: "#95a5a6", positive: "#27ae60", accent: "#2c6fbb",
                   band: "rgba(44,111,187,0.18)", breach: "#e67e22", muted: "#7f8c8d" };

  // ---- language -------------------------------------------------------------------------
  function lang() {
    const q = new URLSearchParams(location.search).get("lang");
    if (q === "zh" || q === "en") return q;
    return localStorage.getItem("radar.lang") || ((navigator.language || "").startsWith("zh") ? "zh" : "en");
  }
  function t(key, vars) {
    const dict = window.RADAR_I18N[lang()] || window.RADAR_I18N.en;
    let s = dict[key] ?? window.RADAR_I18N.en[key] ?? key;
    for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll(`{${k}}`, String(v));
    return s;
  }
  function aspectName(id) {
    const a = CFG.aspects.find((x) => x.id === id);
    return a ? (a.names[lang()] || a.names.en || id) : id;
  }
  function brandName(id) {
    const b = CFG.brands.find((x) => x.id === id);
    return b ? b.name : id;
  }

  // ---- the URL holds the view ------------------------------------------------------------
  function query() { return new URLSearchParams(location.search); }

  /** Filter parameters of the URL (and the interface language), for links between pages. */
  function filterQuery() {
    const q = query(), out = new URLSearchParams();
    for (const k of [...FILTERS, "lang"]) for (const v of q.getAll(k)) out.append(k, v);
    return out;
  }
  /** A dashboard link that keeps the shared filters and adds or replaces ``extra`` ones. */
  function href(path, extra) {
    const q = filterQuery();
    for (const [k, v] of Object.entries(extra || {})) {
      q.delete(k);
      for (const x of [].concat(v)) if (x !== null && x !== undefined && x !== "") q.append(k, x);
    }
    const s = q.toString();
    return s ? `${path}?${s}` : path;
  }
  /** Change the URL's parameters (a new history entry) and redraw the page. */
  function navigate(changes, { replace = false } = {}) {
    const q = query();
    for (const [k, v] of Object.entries(changes)) {
      q.delete(k);
      for (const x of [].concat(v)) if (x !== null && x !== undefined && x !== "") q.append(k, x);
    }
    const url = `${location.pathname}${q.toString() ? "?" + q : ""}`;
    history[replace ? "replaceState" : "pushState"](null, "", url);
    render();
  }

  // ---- API -------------------------------------------------------------------------------
  class ApiFailure extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  function key() { return localStorage.getItem(KEY_STORE); }

  async function api(path, params, { method = "GET", body, retries = 2 } = {}) {
    const q = params instanceof URLSearchParams ? params : toParams(params || {});
    const url = `/v1${path}${q.toString() ? "?" + q : ""}`;
    const headers = { Accept: "application/json" };
    const k = key();
    if (k) headers.Authorization = `Bearer ${k}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiFailure(0, t("err.network"));
    }
    if (res.status === 429 && retries > 0) {
      const wait = Number(res.headers.get("Retry-After") || "1");
      banner(t("err.rate", { s: wait }));
      await new Promise((r) => setTimeout(r, wait * 1000));
      return api(path, params, { method, body, retries: retries - 1 });
    }
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) {
      const msg = data && data.error ? data.error.message : res.statusText;
      if (res.status === 401) signIn(t("err.auth"));
      throw new ApiFailure(res.status, res.status === 403 ? t("err.forbidden") : t("err.generic", { status: res.status, message: msg }));
    }
    return data;
  }
  function toParams(obj) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(obj)) {
      for (const x of [].concat(v)) if (x !== null && x !== undefined && x !== "") q.append(k, x);
    }
    return q;
  }

  // ---- the window and the filters sent to /v1 ----------------------------------------------
  let anchorCache = null;
  /** The filters of the URL as /v1 query parameters, with an explicit [since, until): "last N
   *  days" ends just after the newest item in scope, as the API's own default windows do, so
   *  every page of one view counts the same items. */
  async function window_() {
    const q = query();
    const out = { brand: q.getAll("brand"), region: q.getAll("region"), channel: q.getAll("channel"),
                  language: q.getAll("language") };
    if (q.get("since") && q.get("until")) return { ...out, since: q.get("since"), until: q.get("until"), custom: true };
    const days = Number(q.get("days") || DEFAULT_DAYS);
    const cacheKey = JSON.stringify(out);
    if (!anchorCache || anchorCache.key !== cacheKey) {
      const page = await api("/feedback", { ...out, limit: 1 });
      const newest = page.items.length ? new Date(page.items[0].created_at) : new Date();
      anchorCache = { key: cacheKey, until: new Date(Math.floor(newest.getTime() / 1000) * 1000 + 1000) };
    }
    const until = anchorCache.until;
    const since = new Date(until.getTime() - days * 86400000);
    return { ...out, since: since.toISOString(), until: until.toISOString(), days, custom: false };
  }
  function apiFilters(w) {
    const { custom, days, ...rest } = w;
    return rest;
  }

  let me = null;
  /** Who the key is (role and data scope): shown in the header; pages offer only what the
   *  role may do (the API refuses the rest anyway). */
  async function whoami() {
    if (me && me.key === key()) return me;
    me = { ...(await api("/me")), key: key() };
    document.body.dataset.role = me.role;
    return me;
  }
  function can(...roles) { return !me || roles.includes(me.role); }

  let choicesCache = null;
  const CACHE_TTL_MS = 3600 * 1000;
  /** A value kept in the browser for an hour per key (the filter menus' choices: a scan of
   *  the whole store on large ones, and they rarely change). */
  async function cached(name, compute) {
    const slot = `radar.cache.${(key() || "anonymous").slice(0, 11)}.${name}`;
    try {
      const hit = JSON.parse(localStorage.getItem(slot) || "null");
      if (hit && Date.now() - hit.at < CACHE_TTL_MS) return hit.value;
    } catch (e) { /* a damaged entry is recomputed */ }
    const value = await compute();
    localStorage.setItem(slot, JSON.stringify({ at: Date.now(), value }));
    return value;
  }

  async function choices() {
    if (choicesCache) return choicesCache;
    const found = await cached("filter-values", async () => {
      // one pass over the store for both menus: the region × language breakdown's cells
      const res = await api("/segments", { dimension: ["region", "language"], limit: 1000 });
      const pick = (d) => [...new Set(res.segments.map((s) => s.segment[d]).filter((x) => x))].sort();
      return { region: pick("region"), language: pick("language") };
    });
    choicesCache = { brand: CFG.brands.map((b) => b.id), channel: CHANNELS, ...found };
    return choicesCache;
  }

  async function drawFilters() {
    const box = document.getElementById("filters");
    const q = query();
    const c = await choices();
    box.replaceChildren();
    const win = el("label", {}, t("f.window"), " ");
    const sel = el("select", { id: "f-days", "aria-label": t("f.window") });
    const custom = q.get("since") && q.get("until");
    for (const d of WINDOWS) sel.append(el("option", { value: String(d) }, t("f.days", { n: d })));
    if (custom) sel.append(el("option", { value: "custom" }, t("f.custom")));
    sel.value = custom ? "custom" : String(q.get("days") || DEFAULT_DAYS);
    sel.addEventListener("change", () => {
      if (sel.value !== "custom") navigate({ days: sel.value, since: null, until: null });
    });
    win.append(sel);
    box.append(win);
    if (custom) {
      box.append(el("span", { class: "range", id: "f-range" },
                    `${t("f.since")} ${q.get("since").slice(0, 10)} ${t("f.until")} ${q.get("until").slice(0, 10)}`));
    }
    for (const name of ["brand", "region", "channel", "language"]) {
      const s = el("select", { id: `f-${name}`, "aria-label": t(`f.${name}`) }, el("option", { value: "" }, t("f.all")));
      for (const v of c[name]) s.append(el("option", { value: v }, name === "brand" ? brandName(v) : v));
      const current = q.getAll(name);
      if (current.length === 1 && !c[name].includes(current[0])) s.append(el("option", { value: current[0] }, current[0]));
      s.value = current.length === 1 ? current[0] : "";
      s.addEventListener("change", () => navigate({ [name]: s.value || null }));
      box.append(el("label", {}, t(`f.${name}`), " ", s));
    }
    const clear = el("button", { type: "button", id: "f-clear", class: "link" }, t("f.clear"));
    clear.addEventListener("click", () => navigate(Object.fromEntries(FILTERS.map((k) => [k, null]))));
    box.append(clear);
  }

  // ---- page frame ----------------------------------------------------------------------------
  const NAV = [["overview", "/dashboard/"], ["alerts", "/dashboard/alerts"], ["actions", "/dashboard/actions"],
               ["trends", "/dashboard/trends"],
               ["segments", "/dashboard/segments"], ["themes", "/dashboard/themes"],
               ["competitors", "/dashboard/competitors"], ["explorer", "/dashboard/explorer"],
               ["taxonomy", "/dashboard/taxonomy"], ["label", "/dashboard/label"], ["models", "/dashboard/models"]];
  function drawNav() {
    const nav = document.getElementById("nav");
    nav.replaceChildren();
    const here = CFG.page === "alert" ? "alerts" : CFG.page === "action" ? "actions" : CFG.page;
    for (const [page, path] of NAV) {
      nav.append(el("a", { href: href(path), class: page === here ? "active" : "", "data-nav": page }, t(`nav.${page}`)));
    }
    for (const a of document.querySelectorAll("[data-keep-filters]")) a.href = href("/dashboard/");
    const ui = document.getElementById("ui-lang");
    ui.value = lang();
    ui.onchange = () => { localStorage.setItem("radar.lang", ui.value); navigate({ lang: ui.value }); };
    document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
    for (const n of document.querySelectorAll("[data-t]")) n.textContent = t(n.dataset.t);
    const who = document.getElementById("who");
    who.replaceChildren();
    if (CFG.auth && key()) {
      const scope = me && [...(me.regions || []), ...(me.brands || []).map(brandName)].join(", ");
      who.append(el("span", { id: "who-role", title: me ? me.id : "" }, me ? me.role : ""), " ",
                 ...(scope ? [el("span", { id: "who-scope" }, t("who.scope", { scope })), " "] : []),
                 el("button", { type: "button", class: "link", id: "signout", onclick: () => {
                   localStorage.removeItem(KEY_STORE);
                   for (const k of Object.keys(localStorage)) if (k.startsWith("radar.cache.")) localStorage.removeItem(k);
                   choicesCache = null; anchorCache = null; me = null; signIn();
                 } }, t("signout")));
    }
  }

  function banner(text) {
    const b = document.getElementById("banner");
    if (!text) { b.hidden = true; b.textContent = ""; return; }
    b.hidden = false;
    b.textContent = text;
  }

  function signIn(reason) {
    const dlg = document.getElementById("signin");
    if (dlg.open) return;
    if (reason) banner(reason);
    drawNav();
    dlg.showModal();
  }
  function setupSignIn() {
    // a key handed over in the URL's fragment (#key=rk_…, as `radar demo` prints it) is kept in
    // this browser's storage and removed from the address bar: the fragment never reaches a server
    const m = location.hash.match(/(?:^#|&)key=([^&]+)/);
    if (m) {
      localStorage.setItem(KEY_STORE, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    document.getElementById("signin-form").addEventListener("submit", () => {
      localStorage.setItem(KEY_STORE, document.getElementById("signin-key").value.trim());
      banner("");
      choicesCache = null; anchorCache = null; me = null;
      render();
    });
  }

  // ---- DOM and formatting ------------------------------------------------------------------
  /** Build an element; strings become text nodes (data never goes through innerHTML). */
  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) n.append(c instanceof Node ? c : String(c));
    return n;
  }
  function card(title, ...body) {
    return el("section", { class: "card" }, title ? el("h2", {}, title) : null, ...body);
  }
  const nf0 = () => new Intl.NumberFormat(lang() === "zh" ? "zh-CN" : "en-US");
  function num(x) { return x === null || x === undefined ? "–" : nf0().format(x); }
  function pct(x, digits = 1) { return x === null || x === undefined ? "–" : `${(100 * x).toFixed(digits)}%`; }
  function signed(x, digits = 2) { return x === null || x === undefined ? "–" : `${x > 0 ? "+" : ""}${x.toFixed(digits)}`; }
  function date(s) { return s ? s.slice(0, 10) : "–"; }
  function datetime(s) { return s ? s.replace("T", " ").slice(0, 16) + " UTC" : "–"; }
  function segmentText(seg) {
    return Object.entries(seg || {}).map(([k, v]) => `${k}: ${v}`).join(" · ") || "–";
  }
  function sentimentBadge(s) { return el("span", { class: `badge s-${s}` }, t(`s.${s}`)); }
  function severityBadge(s) { return el("span", { class: `badge sev-${s}` }, t(`sev.${s}`)); }

  /** The filters of a segment ({region: East, age_group: 18-24, brand: …}) as explorer link
   *  parameters: known dimensions map to their filter, any other to an attribute filter. */
  // dimensions with a filter of their own; any other segment field is an attribute (NAME:VALUE)
  const FIELD_DIMS = ["region", "brand", "channel", "language", "product", "source"];
  function segmentParams(seg) {
    const out = { attr: [] };
    for (const [k, v] of Object.entries(seg || {})) {
      if (v === null || v === undefined || v === "") continue;
      if (FIELD_DIMS.includes(k)) out[k] = v;
      else out.attr.push(`${k}:${v}`);
    }
    return out;
  }
  function explorerHref(extra) { return href("/dashboard/explorer", extra); }
  function link(text, url, attrs) { return el("a", { href: url, ...(attrs || {}) }, text); }

  // ---- charts --------------------------------------------------------------------------------
  // Plotly reads a subset of HTML in the text it draws (category labels and ticks, legends, hover
  // text, titles, annotations): <a href> becomes a link, <b>/<br> restyle, entities decode. Data
  // (a product, a brand, a segment, a theme's label, an aspect's configured name) must show as the
  // characters it holds, so every such string is escaped to numeric entities, which Plotly decodes
  // back to exactly those characters (it knows no &quot;). Templates (hovertemplate, texttemplate)
  // are markup written here: data spliced into one goes through plotText at that place.
  const PLOT_ENTITIES = { "&": "&#38;", "<": "&#60;", ">": "&#62;", '"': "&#34;", "'": "&#39;" };
  function plotText(v) { return typeof v === "string" ? v.replace(/[&<>"']/g, (c) => PLOT_ENTITIES[c]) : v; }
  function plotTexts(v) { return Array.isArray(v) ? v.map(plotTexts) : plotText(v); }
  const TRACE_TEXT = ["x", "y", "text", "hovertext", "customdata", "labels", "ids", "name", "legendgroup"];
  function plotTitle(title) {
    if (typeof title === "string") return plotText(title);
    return title && typeof title === "object" ? { ...title, text: plotText(title.text) } : title;
  }
  function plotSafe(traces, layout) {
    const safeTraces = traces.map((tr) => {
      const out = { ...tr };
      for (const k of TRACE_TEXT) if (k in out) out[k] = plotTexts(out[k]);
      return out;
    });
    const safeLayout = { ...layout };
    for (const [k, v] of Object.entries(safeLayout)) {
      if (/^[xy]axis\d*$/.test(k) && v && typeof v === "object") {
        safeLayout[k] = { ...v, ...("title" in v ? { title: plotTitle(v.title) } : {}),
                          ...("ticktext" in v ? { ticktext: plotTexts(v.ticktext) } : {}) };
      }
    }
    if ("title" in safeLayout) safeLayout.title = plotTitle(safeLayout.title);
    if (safeLayout.annotations) safeLayout.annotations = safeLayout.annotations.map((a) => ({ ...a, text: plotText(a.text) }));
    return [safeTraces, safeLayout];
  }
  async function chart(node, traces, layout, { onClick } = {}) {
    const base = {
      margin: { l: 56, r: 56, t: 12, b: 40 }, height: 300, hovermode: "closest",
      font: { family: "system-ui, 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', sans-serif", size: 12 },
      legend: { orientation: "h", y: -0.2 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    };
    const [safeTraces, safeLayout] = plotSafe(traces, { ...base, ...layout });
    await Plotly.newPlot(node, safeTraces, safeLayout,
                         { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] });
    node.dataset.rendered = "1";
    if (onClick) node.on("plotly_click", (ev) => { if (ev.points && ev.points.length) onClick(ev.points[0]); });
  }

  // ---- rendering -----------------------------------------------------------------------------
  let renderSeq = 0;
  async function render() {
    const seq = ++renderSeq;
    drawNav();
    const main = document.getElementById("main");
    main.replaceChildren(el("p", { class: "loading" }, t("loading")));
    document.body.dataset.ready = "0";
    try {
      await whoami();
      drawNav();
      await drawFilters();
      const w = await window_();
      if (seq !== renderSeq) return;
      const pageFn = window.RadarPages[CFG.page];
      const content = el("div", { class: "page" });
      await pageFn(content, w);
      if (seq !== renderSeq) return;
      main.replaceChildren(content);
      // charts are drawn after their containers are in the page (plotly needs sizes)
      for (const job of pendingCharts.splice(0)) await job();
      banner(document.getElementById("banner").dataset.sticky || "");
    } catch (e) {
      if (seq !== renderSeq) return;
      if (e instanceof ApiFailure && e.status === 401) main.replaceChildren();  // the sign-in dialog says it
      else main.replaceChildren(el("p", { class: "error", role: "alert" }, e.message || String(e)));
      if (!(e instanceof ApiFailure)) console.error(e);
    } finally {
      if (seq === renderSeq) document.body.dataset.ready = "1";
    }
  }
  const pendingCharts = [];
  /** A chart container whose plot is drawn once the page is attached. */
  function chartBox(id, draw, cls) {
    const node = el("div", { id, class: `chart ${cls || ""}` });
    pendingCharts.push(() => draw(node));
    return node;
  }

  window.addEventListener("popstate", render);
  document.addEventListener("DOMContentLoaded", () => { setupSignIn(); render(); });

  return { CFG, COLORS, t, lang, can, cached, aspectName, brandName, href, navigate, query, api, apiFilters, el, card,
           num, pct, signed, date, datetime, segmentText, sentimentBadge, severityBadge, segmentParams, FIELD_DIMS,
           explorerHref, link, plotText, chart, chartBox, banner, render };
})();
window.Radar = Radar;
