// Shared by every page: UI text in Chinese and English, the API client,
// the WebSocket client that resumes after a reconnect, and SVG charts.
"use strict";
const CP = (() => {
  const T = {
    zh: {
      title: "课堂脉搏", grid: "课堂", queue: "预警队列", summary: "汇总表", signout: "退出",
      signin: "请使用签发的登录链接登录（/login?token=…）。", class: "课堂", connect: "连接",
      live: "实时已连接", offline: "连接中断，正在重连…", warnings: "实时预警", panel: "班级概况",
      attentive: "专注", confused: "困惑", absent: "未出现", notcaptured: "未采集", masked: "戴口罩", noface: "无人脸",
      students: "学生", student: "学生", course: "课程", level: "级别", category: "类别", state: "状态", loop: "帮扶进度",
      owner: "负责人", unit: "教学单位", term: "学期", filter: "筛选", all: "全部", raised: "预警时间", reason: "原因",
      sessiontotals: "本节课至今", minutes: "分钟", faceshare: "在镜头前",
      attention: "注意力", emotion: "学习情绪", study: "学习时长（实际/要求）", grades: "成绩", history: "预警记录",
      helploop: "帮扶记录", notavail: "暂无数据", record: "记录", action: "操作", channel: "方式", notes: "说明",
      tasks: "任务（每行一项）", due: "完成期限", result: "结果", assign: "指派", confirm: "确认并发送给学生",
      talk: "谈话", notice: "发出预警通知书", parent_contact: "联系家长", plan: "帮扶计划", follow_up: "跟踪回访",
      close: "结案", escalate: "上报", reasons: "查看原因", print: "打印", csv: "导出 CSV",
      noticeTitle: "学业预警通知书", stub: "存根", summaryTitle: "学业预警汇总表", serial: "编号",
      confirmed: "已确认", unconfirmed: "待确认", open: "待处理", assigned: "已指派", in_progress: "帮扶中",
      escalated: "已上报", closed: "已结案", yellow: "黄色", red: "红色", info: "提示", forbidden: "无权访问",
      signStudent: "学生签字", signGuardian: "家长签字", signStaff: "辅导员签字", date: "日期", noNotice: "尚未发出通知书",
      share: "占比", now: "当前",
    },
    en: {
      title: "classpulse", grid: "Class", queue: "Warning queue", summary: "Summary", signout: "Sign out",
      signin: "Sign in with the link you were given (/login?token=…).", class: "Class", connect: "Open",
      live: "live", offline: "disconnected, reconnecting…", warnings: "Live warnings", panel: "Class panel",
      attentive: "attentive", confused: "confused", absent: "absent", notcaptured: "not captured", masked: "masked", noface: "no face",
      students: "students", student: "Student", course: "Course", level: "Level", category: "Category", state: "State", loop: "Help loop",
      owner: "Owner", unit: "Unit", term: "Term", filter: "Filter", all: "all", raised: "Raised", reason: "Reason",
      sessiontotals: "This session so far", minutes: "min", faceshare: "face present",
      attention: "Attention", emotion: "Learning emotion", study: "Study time (done / required)", grades: "Grades", history: "Warnings",
      helploop: "Help loop", notavail: "not available", record: "Record", action: "Action", channel: "Channel", notes: "Notes",
      tasks: "Tasks (one per line)", due: "Due", result: "Result", assign: "Assign", confirm: "Confirm and release to student",
      talk: "Talk", notice: "Issue warning notice", parent_contact: "Contact guardian", plan: "Help plan", follow_up: "Follow up",
      close: "Close", escalate: "Escalate", reasons: "Why?", print: "Print", csv: "Export CSV",
      noticeTitle: "Academic warning notice", stub: "Stub", summaryTitle: "Academic warning summary", serial: "Serial",
      confirmed: "confirmed", unconfirmed: "awaiting confirmation", open: "open", assigned: "assigned", in_progress: "in progress",
      escalated: "escalated", closed: "closed", yellow: "yellow", red: "red", info: "info", forbidden: "Not allowed",
      signStudent: "Student", signGuardian: "Guardian", signStaff: "Counsellor", date: "Date", noNotice: "No notice issued yet",
      share: "share", now: "now",
    },
  };
  let lang = localStorage.getItem("cp-lang") || (navigator.language.startsWith("zh") ? "zh" : "en");
  const t = (k) => (T[lang] && T[lang][k]) || T.en[k] || k;
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const $ = (sel, root) => (root || document).querySelector(sel);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else if (v != null) e.setAttribute(k, v);
    }
    for (const k of kids.flat()) e.append(k instanceof Node ? k : document.createTextNode(String(k ?? "")));
    return e;
  };

  async function api(path, opts) {
    const o = Object.assign({ credentials: "same-origin", headers: {} }, opts || {});
    if (o.body && typeof o.body !== "string") { o.body = JSON.stringify(o.body); o.headers["Content-Type"] = "application/json"; }
    const r = await fetch("/api/v1" + path, o);
    const ct = r.headers.get("Content-Type") || "";
    const body = ct.includes("json") ? await r.json() : await r.text();
    if (!r.ok) { const e = new Error((body && body.reason) || r.statusText); e.status = r.status; e.field = body && body.field; throw e; }
    return body;
  }

  let me = null;
  async function header(active) {
    const h = el("header", {},
      el("strong", {}, t("title")),
      el("a", { href: "/" }, t("grid")), el("a", { href: "/queue" }, t("queue")), el("a", { href: "/summary" }, t("summary")));
    const who = el("span", { class: "who", id: "who" });
    h.append(who,
      el("button", { onclick: () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("cp-lang", lang); location.reload(); } }, lang === "zh" ? "EN" : "中文"),
      el("button", { onclick: async () => { await fetch("/logout", { method: "POST" }); location.href = "/"; } }, t("signout")));
    document.body.prepend(h);
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    try { me = await api("/me"); who.textContent = `${me.name || me.sub} · ${me.role}`; } catch (e) { me = null; who.textContent = t("signin"); }
    return me;
  }

  // reconnectDelay is the wait before reconnect attempt n (0, 1, …):
  // exponential from 0.5 s, capped at 10 s, with "equal jitter" (a random
  // point in the upper half), so the clients of a restarted dashboard do
  // not all come back in the same instant.
  const reconnectDelay = (n) => { const b = Math.min(500 * 2 ** Math.min(n, 10), 10000); return b / 2 + Math.random() * (b / 2); };

  // Live is the WebSocket client. It subscribes to channels, and after a
  // reconnect resumes the warnings channel after the last stream id it saw,
  // so no warning raised while it was away is lost.
  class Live {
    constructor(onFrame, onStatus) { this.onFrame = onFrame; this.onStatus = onStatus || (() => {}); this.chans = new Set(); this.last = ""; this.attempt = 0; this.connect(); }
    subscribe(ch) { this.chans.add(ch); this.sendSub(ch); }
    sendSub(ch) {
      if (!this.ws || this.ws.readyState !== 1) return;
      const m = { op: "subscribe", channel: ch };
      if (ch === "warnings") { if (this.last) m.after = this.last; else m.backlog = 50; }
      this.ws.send(JSON.stringify(m));
    }
    connect() {
      const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
      this.ws = ws;
      ws.onopen = () => { this.attempt = 0; this.onStatus(true); for (const c of this.chans) this.sendSub(c); };
      ws.onmessage = (ev) => {
        let f; try { f = JSON.parse(ev.data); } catch { return; }
        if (f.type === "warning" && f.id) this.last = f.id;
        if (f.type === "subscribed" && f.channel === "warnings" && f.last) this.last = f.last;
        this.onFrame(f);
      };
      ws.onclose = () => { this.onStatus(false); setTimeout(() => this.connect(), reconnectDelay(this.attempt++)); };
    }
  }

  // spark draws values (0..1) as an SVG polyline with an optional band.
  function spark(values, opts) {
    const o = Object.assign({ w: 300, h: 60, color: "#2f6fdf", min: 0, max: 1, label: "" }, opts || {});
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${o.w} ${o.h}`); svg.setAttribute("class", "chart"); svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", o.label);
    const base = document.createElementNS(ns, "line");
    Object.entries({ x1: 0, x2: o.w, y1: o.h - 1, y2: o.h - 1, stroke: "#e3e6eb" }).forEach(([k, v]) => base.setAttribute(k, v));
    svg.append(base);
    if (values.length > 0) {
      const n = Math.max(values.length - 1, 1);
      const pts = values.map((v, i) => `${(i / n) * (o.w - 2) + 1},${o.h - 2 - ((Math.min(Math.max(v, o.min), o.max) - o.min) / (o.max - o.min)) * (o.h - 4)}`);
      const pl = document.createElementNS(ns, "polyline");
      pl.setAttribute("points", pts.join(" ")); pl.setAttribute("fill", "none"); pl.setAttribute("stroke", o.color); pl.setAttribute("stroke-width", "2");
      svg.append(pl);
    }
    return svg;
  }

  // bars draws done/required pairs as horizontal bars.
  function bars(rows) {
    const ns = "http://www.w3.org/2000/svg", rowH = 26, w = 400;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${rows.length * rowH + 4}`); svg.setAttribute("class", "chart");
    const max = Math.max(1, ...rows.map((r) => Math.max(r.done, r.required)));
    rows.forEach((r, i) => {
      const y = i * rowH + 2;
      const mk = (tag, a) => { const e = document.createElementNS(ns, tag); Object.entries(a).forEach(([k, v]) => e.setAttribute(k, v)); svg.append(e); return e; };
      mk("rect", { x: 110, y, width: (r.required / max) * (w - 120), height: 18, fill: "#e3e6eb" });
      mk("rect", { x: 110, y: y + 4, width: (r.done / max) * (w - 120), height: 10, fill: r.done >= r.required ? "#2f9e5b" : "#d64545" });
      mk("text", { x: 0, y: y + 14, "font-size": 12 }).textContent = r.label;
    });
    return svg;
  }

  // attnColour maps attention 0..1 to red → amber → green.
  function attnColour(a) {
    const h = Math.round(Math.max(0, Math.min(1, a)) * 120);
    return `hsl(${h} 62% 42%)`;
  }
  const fmtTime = (s) => { if (!s) return ""; const d = new Date(s); return isNaN(d) ? "" : d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hour12: false }); };
  const fmtDate = (s) => { if (!s) return ""; const d = new Date(s); return isNaN(d) ? "" : d.toISOString().slice(0, 10); };
  const params = () => new URLSearchParams(location.search);
  return { t, esc, $, el, api, header, Live, reconnectDelay, spark, bars, attnColour, fmtTime, fmtDate, params, get me() { return me; }, get lang() { return lang; } };
})();
