"use strict";
(async () => {
  const { t, el, $, Live, attnColour, spark, fmtTime } = CP;
  document.querySelectorAll("[data-t]").forEach((e) => (e.textContent = t(e.dataset.t)));
  const me = await CP.header("grid");
  const q = CP.params();
  let cls = q.get("class") || (me && me.classes && me.classes[0]) || "";
  $("#classin").value = cls;
  $("#title").textContent = t("grid") + (cls ? " · " + cls : "");
  $("#classform").addEventListener("submit", (e) => { e.preventDefault(); location.search = "?class=" + encodeURIComponent($("#classin").value.trim()); });
  $("#lg-att").style.background = "#2f9e5b"; $("#lg-conf").style.background = "#e0a800"; $("#lg-abs").style.background = "#d64545";
  if (!me) { $("#empty").textContent = t("signin"); return; }

  const tiles = new Map(); // student → tile
  const history = []; // class shares over time
  const grid = $("#grid");

  function tileEl(tl) {
    const nc = !tl.captured;
    const d = el("div", { class: "tile" + (nc ? " nc" : "") + (tl.warning_level ? " w-" + tl.warning_level : ""), "data-student": tl.student, title: tl.student },
      el("div", { class: "id" }, tl.student),
      el("div", { class: "att" }, nc ? t("notcaptured") : Math.round(tl.attention * 100) + "%"),
      el("div", { class: "marks" }, nc ? "" : (tl.face_present ? "" : "⊘ " + t("noface")) + (tl.masked ? " 😷" : "")),
      el("div", { class: "dom" }, tl.dominant ? t(tl.dominant) === tl.dominant ? tl.dominant : t(tl.dominant) : ""));
    if (!nc) d.style.background = attnColour(tl.face_present ? tl.attention : 0);
    d.addEventListener("click", () => (location.href = "/student?id=" + encodeURIComponent(tl.student)));
    return d;
  }
  function put(tl) {
    if (cls && tl.session !== cls && tl.course !== cls) return;
    tiles.set(tl.student, tl);
    const old = grid.querySelector(`[data-student="${CSS.escape(tl.student)}"]`);
    const n = tileEl(tl);
    if (old) old.replaceWith(n); else {
      // keep the grid in student order so tiles do not jump around
      const after = [...grid.children].find((c) => c.dataset.student > tl.student);
      grid.insertBefore(n, after || null);
    }
    $("#empty").textContent = "";
  }
  function panel() {
    const all = [...tiles.values()];
    const cap = all.filter((x) => x.captured);
    const att = cap.filter((x) => x.face_present && x.attention >= 0.5).length;
    const conf = cap.filter((x) => x.dominant === "confused" || x.dominant === "frustrated").length;
    const abs = cap.filter((x) => !x.face_present).length;
    const n = Math.max(cap.length, 1);
    history.push({ att: att / n, conf: conf / n, abs: abs / n });
    if (history.length > 300) history.shift();
    $("#panel").textContent = `${all.length} ${t("students")} · ${t("attentive")} ${Math.round((100 * att) / n)}% · ${t("confused")} ${Math.round((100 * conf) / n)}% · ${t("absent")} ${abs} · ${t("notcaptured")} ${all.length - cap.length}`;
    const box = $("#panelchart"); box.textContent = "";
    box.append(spark(history.map((h) => h.att), { color: "#2f9e5b", label: t("attentive") }), spark(history.map((h) => h.conf), { color: "#e0a800", label: t("confused") }), spark(history.map((h) => h.abs), { color: "#d64545", label: t("absent") }));
  }
  setInterval(panel, 2000);

  const feed = $("#feed");
  const seen = new Set();
  function warn(w, id) {
    const key = (id || "") + w.id;
    if (seen.has(key)) return; seen.add(key);
    const li = el("li", { class: w.level, "data-ref": w.ref, "data-id": id || "" },
      el("div", {}, el("span", { class: "badge " + w.level }, t(w.level)), " ", w.student ? el("a", { href: "/student?id=" + encodeURIComponent(w.student) }, w.student) : (w.session || ""), " · ", w.category, " · ", w.state),
      el("div", {}, w.reason),
      el("div", { class: "meta" }, fmtTime(w.ts), " · ", w.rule));
    feed.prepend(li);
    while (feed.children.length > 200) feed.lastChild.remove();
    if (w.student && tiles.has(w.student) && w.state !== "cleared") { const tl = tiles.get(w.student); tl.warning_level = w.level; put(tl); }
  }

  const live = new Live((f) => {
    if (f.type === "tile") put(f.tile);
    else if (f.type === "snapshot") { f.tiles.forEach(put); panel(); }
    else if (f.type === "warning" || f.type === "released") warn(f.warning, f.id);
    else if (f.type === "error") { const s = $("#status"); s.textContent = f.reason; s.className = "status bad"; }
  }, (up) => { const s = $("#status"); s.textContent = up ? "● " + t("live") : "○ " + t("offline"); s.className = "status " + (up ? "ok" : "bad"); s.dataset.live = up ? "1" : "0"; });
  if (cls) live.subscribe("class:" + cls);
  live.subscribe("warnings");
})();
