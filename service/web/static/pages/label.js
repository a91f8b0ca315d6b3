// Label page: the labeling queue, one item at a time, answered from the keyboard; the label
// counts and the serving team model's quality beside it.
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, num, link } = R;
  const { table, SENTIMENTS, fig, qualityTable } = window.RadarUI;

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

  window.RadarPages.label = labelPage;
})();
