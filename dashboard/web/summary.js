"use strict";
(async () => {
  const { t, el, $, api, fmtDate } = CP;
  const me = await CP.header("summary");
  const main = $("#main");
  if (!me) { $("#msg").textContent = t("signin"); return; }
  const q = CP.params();
  if (!q.get("unit") && me.units && me.units.length) q.set("unit", me.units[0]);
  const form = el("form", { class: "row noprint" }, el("label", {}, t("unit"), el("input", { name: "unit", value: q.get("unit") || "", size: 10 })),
    el("label", {}, t("term"), el("input", { name: "term", value: q.get("term") || "", size: 12 })), el("button", { class: "primary" }, t("filter")),
    el("a", { href: "/api/v1/summary?format=csv&" + q.toString() }, t("csv")), el("button", { type: "button", onclick: () => window.print() }, t("print")));
  form.addEventListener("submit", (e) => { e.preventDefault(); const p = new URLSearchParams(); for (const [k, v] of new FormData(form)) if (v) p.set(k, v); location.search = p; });
  let s;
  try { s = await api("/summary?" + q.toString()); }
  catch (e) { main.replaceChildren(form, el("p", { class: "err" }, e.message)); return; }
  const cat = (c) => ({ study: "学习状态预警", grade: "学习成绩预警", degree: "毕业学位预警", risk: "学业风险提示", custom: "学校自定义预警" }[c] || c);
  main.replaceChildren(form, el("h1", {}, `${s.school} ${t("summaryTitle")} · ${s.unit || t("all")} · ${s.term}`),
    el("div", { class: "tablewrap" }, el("table", { id: "summary" },
      el("tr", {}, ["No", "serial", "student", "Name", "unit", "class", "category", "level", "state", "loop", "result", "owner", "raised", "closed"].map((h) => el("th", {}, t(h)))),
      s.rows.map((r) => el("tr", {}, [r.no, r.serial, r.student, r.name, r.unit, r.class, CP.lang === "zh" ? cat(r.category) : r.category, t(r.level), t(r.state), t(r.loop), r.result, r.owner, fmtDate(r.raised), fmtDate(r.closed)].map((v) => el("td", {}, v ?? "")))))));
})();
