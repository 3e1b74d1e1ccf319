"use strict";
// The help loop's effectiveness per term: share of warned students who
// recovered and median days to recovery, by category and playbook.
// Printable (the form hides in print) and downloadable as CSV.
(async () => {
  const { t, el, $, api } = CP;
  const LT = {
    zh: { title: "帮扶成效", playbook: "帮扶方案", warned: "预警学生", recovered: "已恢复", share: "恢复比例", median: "恢复用时中位数（天）", escalated: "到期升级为红色", none: "无方案", all: "合计" },
    en: { title: "Help-loop effectiveness", playbook: "Playbook", warned: "Warned students", recovered: "Recovered", share: "Share recovered", median: "Median days to recovery", escalated: "Raised to red at deadline", none: "no playbook", all: "all" },
  };
  const L = (k) => (LT[CP.lang] || LT.en)[k] || t(k);
  const me = await CP.header("summary");
  const main = $("#main");
  if (!me) { $("#msg").textContent = t("signin"); return; }
  const q = CP.params();
  const form = el("form", { class: "row noprint" },
    el("label", {}, t("term"), el("input", { name: "term", value: q.get("term") || "", size: 12, placeholder: "2026-autumn" })),
    el("button", { class: "primary" }, t("filter")),
    el("a", { href: "/api/v1/reports/effectiveness?format=csv&" + q.toString() }, t("csv")),
    el("button", { type: "button", onclick: () => window.print() }, t("print")));
  form.addEventListener("submit", (e) => { e.preventDefault(); const p = new URLSearchParams(); for (const [k, v] of new FormData(form)) if (v) p.set(k, v); location.search = p; });
  let rep;
  try { rep = await api("/reports/effectiveness?" + q.toString()); }
  catch (e) { main.replaceChildren(form, el("p", { class: "err" }, (e.field ? e.field + ": " : "") + e.message)); return; }
  const name = (v) => (v === "none" || v === "all" ? L(v) : v);
  const pct = (x) => (100 * x).toFixed(1) + "%";
  const line = (r, total) => el("tr", total ? { class: "total" } : {}, [name(r.category), name(r.playbook), r.warned, r.recovered, pct(r.share),
    r.median_days == null ? "—" : r.median_days, r.escalated].map((v) => el("td", {}, String(v))));
  main.replaceChildren(form, el("h1", {}, L("title") + " · " + rep.term),
    el("div", { class: "tablewrap" }, el("table", { id: "effectiveness" },
      el("tr", {}, [t("category"), L("playbook"), L("warned"), L("recovered"), L("share"), L("median"), L("escalated")].map((h) => el("th", {}, h))),
      rep.rows.map((r) => line(r, false)), line(rep.total, true))));
})();
