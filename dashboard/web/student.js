"use strict";
(async () => {
  const { t, el, $, api, Live, spark, bars, fmtTime, fmtDate } = CP;
  const me = await CP.header("student");
  const id = CP.params().get("id") || (me && me.role === "student" ? me.sub : "");
  const main = $("#main");
  if (!me) { $("#msg").textContent = t("signin"); return; }
  let data;
  try { data = await api("/students/" + encodeURIComponent(id)); }
  catch (e) { main.replaceChildren(el("h1", { class: "err", id: "denied" }, t("forbidden")), el("p", { class: "err" }, e.message)); return; }
  const name = data.roster && data.roster.name ? data.roster.name + " · " : "";
  main.replaceChildren(el("h1", { id: "title" }, name + data.student, data.roster && data.roster.unit ? el("span", { class: "muted" }, " · " + data.roster.unit) : ""));
  const NA = (k) => el("p", { class: "muted" }, t("notavail") + (data.missing && data.missing[k] ? " — " + data.missing[k] : ""));

  if (me.role !== "student" && me.role !== "guardian") {
    const live = el("section", { class: "card" }, el("h2", {}, t("attention")));
    if (data.live && data.live.points.length) {
      const pts = data.live.points;
      live.append(spark(pts.map((p) => (p.captured && p.face_present ? p.attention : 0)), { label: t("attention") }),
        el("p", { class: "muted" }, `${data.live.session || ""} · ${fmtTime(pts[0].ts)} – ${fmtTime(pts[pts.length - 1].ts)}`));
      // The whole session so far, beyond the minutes the points reach back.
      const st = data.live.session_totals;
      if (st && st.seconds > 0) {
        const pct = (x) => Math.round(100 * x) + "%";
        const parts = [`${Math.round(st.seconds / 60)} ${t("minutes")}`, `${t("attention")} ${pct(st.attention)}`, `${t("faceshare")} ${pct(st.face_present)}`];
        if (st.learning) {
          const top = Object.entries(st.learning).sort((a, b) => b[1] - a[1])[0];
          if (top) parts.push(`${top[0]} ${pct(top[1])}`);
        }
        live.append(el("p", { id: "session-totals" }, `${t("sessiontotals")}${st.started ? " (" + fmtTime(st.started) + ")" : ""}: ${parts.join(" · ")}`));
      }
      const em = ["engaged", "confused", "bored", "frustrated"];
      const colours = { engaged: "#2f9e5b", confused: "#e0a800", bored: "#6b7280", frustrated: "#d64545" };
      live.append(el("h2", {}, t("emotion")));
      for (const e of em) {
        const vals = pts.map((p) => (p.learning && p.learning[e] != null ? p.learning[e] : p.dominant === e ? 1 : 0));
        live.append(el("div", { class: "legend" }, el("span", {}, e)), spark(vals, { color: colours[e], h: 30, label: e }));
      }
    } else live.append(NA("live"));
    main.append(live);
  }

  // Learner profile and predicted grade (staff only: the API leaves them
  // out for students and guardians).
  if (me.role !== "student" && me.role !== "guardian") {
    const L = CP.lang === "zh"
      ? { title: "学习者画像与成绩预测", profile: "画像", grade: "预测成绩", pd: "D 的概率", model: "模型", at: "时间", none: "未预测" }
      : { title: "Learner profile and predicted grade", profile: "Profile", grade: "Predicted grade", pd: "P(D)", model: "Model", at: "When", none: "no model" };
    const lp = el("section", { class: "card", id: "learner" }, el("h2", {}, L.title));
    if (data.learner && data.learner.courses.length) {
      lp.append(el("div", { class: "tablewrap" }, el("table", {},
        el("tr", {}, el("th", {}, t("course")), el("th", {}, L.profile), el("th", {}, L.grade), el("th", {}, L.pd), el("th", {}, L.model), el("th", {}, L.at)),
        data.learner.courses.map((c) => el("tr", { "data-course": c.course, "data-profile": c.profile, "data-grade": c.predicted_grade || "" },
          el("td", {}, c.course || "—"), el("td", {}, c.profile + (c.k ? ` (${c.cluster + 1}/${c.k})` : "")),
          el("td", {}, c.predicted_grade ? el("span", { class: "badge " + (c.predicted_grade === "D" ? "red" : "") }, c.predicted_grade) : el("span", { class: "muted" }, L.none)),
          el("td", { class: "pd" }, c.p_d != null ? Math.round(c.p_d * 100) + " %" : "—"),
          el("td", { class: "muted" }, c.model || "—"), el("td", { class: "muted" }, fmtDate(c.at)))))));
    } else lp.append(NA("learner"));
    main.append(lp);
  }

  const acad = el("section", { class: "card" }, el("h2", {}, t("study")));
  if (data.academic) {
    acad.append(bars(data.academic.courses.map((c) => ({ label: c.course, done: c.study_s / 3600, required: c.required_s / 3600 }))));
    acad.append(el("h2", {}, t("grades")), el("div", { class: "tablewrap" }, el("table", {}, el("tr", {}, el("th", {}, t("course")), el("th", {}, t("term")), el("th", {}, "score"), el("th", {}, "")),
      data.academic.grades.map((g) => el("tr", {}, el("td", {}, g.course), el("td", {}, g.term), el("td", {}, g.score), el("td", {}, g.passed ? "✓" : "✗", g.core ? " core" : "", g.elective ? " elective" : ""))))));
  } else acad.append(NA("academic"));
  main.append(acad);

  const hist = el("section", { class: "card" }, el("h2", {}, t("history")));
  const list = el("div", { id: "warnings" });
  hist.append(list);
  main.append(hist);
  const stepLists = new Map();
  const seenSteps = new Set();
  function stepLine(s) {
    return el("li", { "data-step": s.id, "data-action": s.action }, el("strong", {}, t(s.action)), " · ", fmtTime(s.ts), " · ", s.by, s.channel ? " · " + s.channel : "",
      s.notes ? el("div", {}, s.notes) : "", s.tasks && s.tasks.length ? el("ul", {}, s.tasks.map((x) => el("li", {}, x))) : "", s.due ? el("div", {}, t("due"), ": ", fmtDate(s.due)) : "",
      s.result ? el("div", {}, t("result"), ": ", s.result) : "");
  }
  function addStep(s) {
    if (seenSteps.has(s.id)) return; seenSteps.add(s.id);
    const ul = stepLists.get(s.warning);
    if (ul) ul.append(stepLine(s));
  }
  for (const w of data.warnings) {
    const ul = el("ul", { class: "steps", "data-ref": w.ref });
    stepLists.set(w.ref, ul);
    const reasons = el("div", { class: "reasons" });
    const box = el("div", { class: "card", "data-warning": w.ref },
      el("div", {}, el("span", { class: "badge " + w.level }, t(w.level)), " ", w.category, " · ", t(w.state) , " · ", t(w.loop), " · ", w.confirmed ? t("confirmed") : t("unconfirmed"), w.serial ? " · " + t("serial") + " " + w.serial : ""),
      el("p", {}, w.reason), el("p", { class: "muted" }, fmtTime(w.raised_at), w.course ? " · " + w.course : "", w.owner ? " · " + t("owner") + " " + w.owner : ""),
      el("button", { onclick: async () => { const r = await api("/warnings/" + w.ref + "/reasons"); reasons.replaceChildren(el("p", {}, r.reason), el("ul", {}, r.evidence.map((e) => el("li", {}, (CP.lang === "zh" ? e.name[0] : e.name[1]) + ": " + e.value))), el("p", { class: "muted" }, CP.lang === "zh" ? r.rights[0] : r.rights[1])); } }, t("reasons")),
      w.serial ? el("a", { href: "/notice?ref=" + w.ref }, " " + t("noticeTitle")) : "",
      reasons, el("h3", {}, t("helploop")), ul);
    list.append(box);
    (w.steps || []).forEach(addStep);
    if (data.can_work) box.append(stepForm(w));
  }
  if (!data.warnings.length) list.append(el("p", { class: "muted" }, "—"));

  function stepForm(w) {
    const actions = ["talk", "plan", "follow_up", "notice", "parent_contact", "assign", "confirm", "escalate", "close"];
    const f = el("form", { class: "row noprint", "data-form": w.ref },
      el("label", {}, t("action"), el("select", { name: "action" }, actions.map((a) => el("option", { value: a }, t(a))))),
      el("label", {}, t("channel"), el("select", { name: "channel" }, ["", "face_to_face", "phone", "sms", "email", "social_media", "letter"].map((c) => el("option", { value: c }, c)))),
      el("label", {}, t("owner"), el("input", { name: "owner", size: 10 })),
      el("label", {}, t("notes"), el("textarea", { name: "notes", rows: 2, cols: 24 })),
      el("label", {}, t("tasks"), el("textarea", { name: "tasks", rows: 2, cols: 20 })),
      el("label", {}, t("due"), el("input", { name: "due", type: "date" })),
      el("label", {}, t("result"), el("select", { name: "result" }, ["", "helped", "escalated", "withdrawn"].map((c) => el("option", { value: c }, c)))),
      el("button", { class: "primary", type: "submit" }, t("record")), el("span", { class: "err", "data-err": "" }));
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      const fd = new FormData(f);
      const body = { action: fd.get("action") };
      for (const k of ["channel", "owner", "notes", "due", "result"]) if (fd.get(k)) body[k] = fd.get(k);
      const tasks = String(fd.get("tasks") || "").split("\n").map((x) => x.trim()).filter(Boolean);
      if (tasks.length) body.tasks = tasks;
      const err = f.querySelector("[data-err]");
      try { await api("/warnings/" + w.ref + "/steps", { method: "POST", body }); err.textContent = ""; f.reset(); }
      catch (x) { err.textContent = (x.field ? x.field + ": " : "") + x.message; }
    });
    return f;
  }

  const liveWs = new Live((f) => {
    if (f.type === "intervention") addStep(f.intervention);
    if (f.type === "released" && !stepLists.has(f.warning.ref)) location.reload();
  }, (up) => { document.body.dataset.live = up ? "1" : "0"; });
  liveWs.subscribe("student:" + data.student);
  if (me.role === "student" || me.role === "guardian") liveWs.subscribe("warnings");
})();
