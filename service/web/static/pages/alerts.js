// Alerts page: the alert list, filtered by status, severity and type.
"use strict";
(() => {
  const R = window.Radar;
  const { el, t, card, api, link } = R;
  const { table, alertWhere } = window.RadarUI;

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
      el("td", {}, alertWhere(a)),
      el("td", { class: "num" }, R.date(a.onset)), el("td", { class: "num" }, R.date(a.last_detected_at))));
    box.append(card(`${t("al.title")} (${res.alerts.length}${res.next_offset ? "+" : ""})`, controls,
      rows.length ? table([t("al.severity"), t("al.status"), "", t("f.brand"), t("al.segment"), { label: t("al.onset"), num: true },
                           { label: t("al.detected"), num: true }], rows, { id: "alerts-table" }) : el("p", { class: "muted" }, t("al.none"))));
  }

  window.RadarPages.alerts = alerts;
})();
