"use strict";
(async () => {
  const { t, el, $, api, fmtTime } = CP;
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
    el("td", {}, w.serial ? el("a", { href: "/notice?ref=" + w.ref }, w.serial) : "")));
  main.append(el("p", { class: "muted" }, `${res.total}`), el("div", { class: "tablewrap" }, el("table", { id: "queue" },
    el("tr", {}, ["student", "unit", "category", "level", "state", "loop", "owner", "confirmed", "reason", "raised", "serial"].map((h) => el("th", {}, t(h)))), rows)));
})();
