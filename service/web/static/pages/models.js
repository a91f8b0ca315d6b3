// Models page: team models, training, promotion and rollback.
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, num } = R;
  const { table, versus, qualityTable } = window.RadarUI;

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

  window.RadarPages.models = models;
})();
