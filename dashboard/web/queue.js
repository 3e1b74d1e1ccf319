"use strict";
(async () => {
  const { t, el, $, api, fmtTime, fmtDate } = CP;
  // Labels of the help-plan panel, here rather than in app.js's table.
  const LT = {
    zh: { plan: "帮扶计划", playbook: "帮扶方案", checkpoints: "自动跟踪", deliveries: "通知发送记录", save: "保存计划", none: "该类预警没有帮扶方案，请自行填写。",
      remind: "提醒", check: "检查进度", deadline: "期限", proposal: "系统建议：目标已达成，结案为“已帮扶”。", confirmClose: "确认结案（已帮扶）", saved: "已保存" },
    en: { plan: "Plan", playbook: "Playbook", checkpoints: "Automatic follow-up", deliveries: "Notification deliveries", save: "Save plan", none: "No playbook for this kind of warning; write the plan yourself.",
      remind: "reminder", check: "progress check", deadline: "deadline", proposal: "System proposal: target met, close as helped.", confirmClose: "Confirm: close as helped", saved: "Saved" },
  };
  const L = (k) => (LT[CP.lang] || LT.en)[k] || t(k);
  const me = await CP.header("queue");
  const main = $("#main");
  if (!me) { $("#msg").textContent = t("signin"); return; }
  const q = CP.params();
  const sel = (name, opts) => el("label", {}, t(name), el("select", { name }, [el("option", { value: "" }, t("all")), ...opts.map((o) => el("option", { value: o }, t(o)))]));
  const form = el("form", { class: "row card noprint", id: "filters" },
    sel("category", ["study", "grade", "degree", "risk", "custom", "engagement", "class"]), sel("level", ["info", "yellow", "red"]),
    sel("state", ["raised", "escalated", "cleared"]), sel("loop", ["open", "assigned", "in_progress", "escalated", "closed"]),
    el("label", {}, t("course"), el("input", { name: "course", size: 8 })), el("label", {}, t("unit"), el("input", { name: "unit", size: 8 })),
    el("label", {}, t("owner"), el("input", { name: "owner", size: 8 })), el("label", {}, t("term"), el("input", { name: "term", size: 11 })),
    el("button", { class: "primary" }, t("filter")));
  for (const [k, v] of q) { const i = form.elements.namedItem(k); if (i) i.value = v; }
  form.addEventListener("submit", (e) => { e.preventDefault(); const p = new URLSearchParams(); for (const [k, v] of new FormData(form)) if (v) p.set(k, v); location.search = p; });
  main.replaceChildren(el("h1", {}, t("queue")), form);
  let res;
  try { res = await api("/warnings?" + q.toString()); }
  catch (e) { main.append(el("p", { class: "err" }, (e.field ? e.field + ": " : "") + e.message)); return; }
  const rows = res.warnings.map((w) => el("tr", { "data-ref": w.ref },
    el("td", {}, el("a", { href: "/student?id=" + encodeURIComponent(w.student) }, w.student)), el("td", {}, w.unit || ""), el("td", {}, w.category),
    el("td", {}, el("span", { class: "badge " + w.level }, t(w.level))), el("td", {}, t(w.state)), el("td", {}, t(w.loop)), el("td", {}, w.owner || ""),
    el("td", {}, w.confirmed ? t("confirmed") : t("unconfirmed")), el("td", {}, w.reason), el("td", {}, fmtTime(w.raised_at)),
    el("td", {}, w.serial ? el("a", { href: "/notice?ref=" + w.ref }, w.serial) : ""),
    el("td", { class: "noprint" }, el("button", { "data-plan": w.ref, onclick: (e) => openPlan(w, e.target.closest("tr")) }, L("plan")))));
  main.append(el("p", { class: "muted" }, `${res.total}`), el("div", { class: "tablewrap" }, el("table", { id: "queue" },
    el("tr", {}, ["student", "unit", "category", "level", "state", "loop", "owner", "confirmed", "reason", "raised", "serial", ""].map((h) => el("th", {}, t(h)))), rows)));

  // openPlan shows, under a row, the help plan pre-filled from the policy's
  // playbook, the follow-up it will get, the warning's steps (with a confirm
  // button on a system proposal to close) and its notification deliveries.
  async function openPlan(w, tr) {
    const old = document.querySelector("tr.planrow[data-for='" + w.ref + "']");
    if (old) { old.remove(); return; }
    const cell = el("td", { colspan: 12 });
    tr.after(el("tr", { class: "planrow", "data-for": w.ref }, cell));
    let pre, full, dl;
    try {
      [pre, full, dl] = await Promise.all([api("/warnings/" + w.ref + "/plan"), api("/warnings/" + w.ref), api("/warnings/" + w.ref + "/deliveries")]);
    } catch (e) { cell.append(el("p", { class: "err" }, e.message)); return; }
    const f = el("form", { class: "card", "data-planform": w.ref },
      el("h3", {}, L("plan"), pre.playbook ? " · " + L("playbook") + ": " + pre.playbook.title : ""),
      pre.playbook ? "" : el("p", { class: "muted" }, L("none")),
      el("label", {}, t("tasks"), el("textarea", { name: "tasks", rows: Math.max(3, (pre.plan.tasks || []).length), cols: 70 }, (pre.plan.tasks || []).join("\n"))),
      el("label", {}, t("due"), el("input", { name: "due", type: "date", value: fmtDate(pre.plan.due) || pre.plan.due })),
      el("label", {}, t("notes"), el("input", { name: "notes", size: 50, value: pre.plan.notes || "" })),
      el("button", { class: "primary", type: "submit" }, L("save")), el("span", { "data-msg": "" }));
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      const fd = new FormData(f);
      const body = { action: "plan", due: fd.get("due"), tasks: String(fd.get("tasks")).split("\n").map((x) => x.trim()).filter(Boolean) };
      if (fd.get("notes")) body.notes = fd.get("notes");
      const msg = f.querySelector("[data-msg]");
      try { await api("/warnings/" + w.ref + "/steps", { method: "POST", body }); msg.className = "muted"; msg.textContent = L("saved"); }
      catch (x) { msg.className = "err"; msg.textContent = (x.field ? x.field + ": " : "") + x.message; }
    });
    const cps = el("ul", { "data-checkpoints": "" }, (pre.checkpoints || []).map((c) => el("li", {}, fmtTime(c.at), " · ", L(c.kind))));
    const steps = el("ul", { class: "steps" }, (full.steps || []).map((s) => el("li", { "data-action": s.action, "data-by": s.by },
      el("strong", {}, t(s.action)), " · ", fmtTime(s.ts), " · ", s.by, s.result ? " · " + s.result : "", s.notes ? el("div", {}, s.notes) : "")));
    const last = (full.steps || []).filter((s) => s.by === "system").pop();
    const proposal = last && last.result === "propose_close_helped" && full.loop !== "closed"
      ? el("p", { "data-proposal": "" }, L("proposal"), " ", el("button", { class: "primary", onclick: async (e) => {
        try { await api("/warnings/" + w.ref + "/steps", { method: "POST", body: { action: "close", result: "helped", notes: "Confirmed the follow-up's proposal" } }); e.target.disabled = true; }
        catch (x) { e.target.after(el("span", { class: "err" }, x.message)); } } }, L("confirmClose")))
      : "";
    const dels = el("table", { "data-deliveries": "" }, el("tr", {}, ["ts", "channel", "to", "role", "try", "outcome", "error"].map((h) => el("th", {}, h))),
      dl.deliveries.map((a) => el("tr", {}, [fmtTime(a.ts), a.channel, a.to || "", a.role || "", a.try || "", a.outcome, a.error || ""].map((v) => el("td", {}, String(v))))));
    cell.append(f, pre.checkpoints && pre.checkpoints.length ? el("div", {}, el("h3", {}, L("checkpoints")), cps) : "",
      el("h3", {}, t("helploop")), steps, proposal, el("h3", {}, L("deliveries")), dl.deliveries.length ? dels : el("p", { class: "muted" }, "—"));
  }
})();
