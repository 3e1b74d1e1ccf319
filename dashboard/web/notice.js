"use strict";
(async () => {
  const { t, el, $, api, fmtDate } = CP;
  const me = await CP.header("notice");
  const main = $("#main");
  if (!me) { $("#msg").textContent = t("signin"); return; }
  const ref = CP.params().get("ref") || "";
  let n;
  try { n = await api("/warnings/" + encodeURIComponent(ref) + "/notice"); }
  catch (e) { main.replaceChildren(el("p", { class: "err" }, e.status === 409 ? t("noNotice") : e.message)); return; }
  const zh = CP.lang === "zh";
  const who = (n.roster && n.roster.name) || n.student;
  const body = (stub) => el("div", {},
    el("h2", {}, n.school, " ", t("noticeTitle"), stub ? "（" + t("stub") + "）" : ""),
    el("p", { class: "serial" }, t("serial"), ": ", el("strong", { "data-serial": n.serial }, n.serial)),
    el("p", {}, `${who}（${n.student}）${n.roster && n.roster.unit ? " · " + n.roster.unit : ""}${n.roster && n.roster.class ? " · " + n.roster.class : ""}`),
    el("p", {}, zh ? `经核查，你在 ${n.term || ""} 学期触发了${n.explain.category[0]}（${n.explain.level[0]}）。` : `In term ${n.term || ""} you reached a ${n.explain.category[1]} (${n.explain.level[1]}).`),
    el("p", {}, t("reason"), ": ", n.explain.reason),
    el("ul", {}, n.explain.evidence.filter((e) => e.key !== "sent_us").map((e) => el("li", {}, (zh ? e.name[0] : e.name[1]) + ": " + e.value))),
    stub ? "" : el("div", {}, n.plan && n.plan.length ? [el("p", {}, t("plan"), ":"), el("ol", {}, n.plan.map((x) => el("li", {}, x))), n.plan_due ? el("p", {}, t("due"), ": ", fmtDate(n.plan_due)) : ""] : "",
      el("p", { class: "muted" }, zh ? n.explain.rights[0] : n.explain.rights[1])),
    el("div", { class: "sig" }, el("span", {}, (n.minor ? t("signGuardian") : t("signStudent")) + "：________"), el("span", {}, t("signStaff") + "：________ " + (n.owner || "")), el("span", {}, t("date") + "：" + fmtDate(n.issued))));
  main.replaceChildren(el("div", { class: "row noprint" }, el("button", { class: "primary", onclick: () => window.print() }, t("print"))),
    el("article", { class: "notice", id: "notice" }, body(true), el("div", { class: "cut" }, "✂ ----------------------------------------------"), body(false)));
})();
