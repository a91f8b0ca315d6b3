// Taxonomy page: edit one aspect, preview what it would tag, save (admins).
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, pct, link } = R;
  const { kpi, table, highlight } = window.RadarUI;

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
      // safety aspects: what the rules matched and the harm verifier did not tag
      a.dropped_by_verifier && a.dropped_by_verifier.count
        ? card(`${t("tx.dropped")} (${a.dropped_by_verifier.count})`, ul(a.dropped_by_verifier.items.map((m) =>
            ({ ...m, model_probability: m.verifier_probability })), "tx-dropped"))
        : null,
      card(t("tx.overlap"), Object.keys(a.overlap).length
        ? table([t("tx.aspect"), { label: t("tx.items"), num: true }], Object.entries(a.overlap).sort((x, y) => y[1] - x[1])
            .map(([k, n]) => el("tr", {}, el("td", {}, R.aspectName(k)), el("td", { class: "num" }, String(n)))), { id: "tx-overlap" })
        : el("p", { class: "muted", id: "tx-overlap" }, "–")));
  }

  window.RadarPages.taxonomy = taxonomy;
})();
