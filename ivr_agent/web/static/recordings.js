"use strict";
(() => {
  const T = JSON.parse(document.getElementById("i18n").textContent);
  const CFG = JSON.parse(document.getElementById("config").textContent);
  const $ = (id) => document.getElementById(id);
  const tbody = document.querySelector("#results tbody");
  const timeFormat = new Intl.DateTimeFormat(CFG.lang, {
    timeZone: CFG.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  let nextCursor = null;
  let lastQuery = null;

  async function api(path, options) {
    const r = await fetch(path, { credentials: "same-origin", ...options });
    if (r.status === 401) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname);
      throw new Error(T.err_unauthenticated);
    }
    const body = r.status === 204 ? null : await r.json().catch(() => null);
    if (!r.ok) {
      const code = (body && body.error) || "server_error";
      throw new Error(T["err_" + code] || (body && body.message) || code);
    }
    return body;
  }

  function post(path, data) {
    return api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(data || {}),
    });
  }

  function query(form) {
    const q = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (!value) continue;
      // datetime-local is the browser's local time: send an unambiguous UTC instant.
      q.set(key, key === "from" || key === "to" ? new Date(value).toISOString() : value);
    }
    return q;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;  // textContent, never innerHTML: caller names are caller-controlled
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function button(label, handler) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", handler);
    return b;
  }

  function show(items, append) {
    if (!append) tbody.replaceChildren();
    for (const r of items) {
      const tr = document.createElement("tr");
      tr.dataset.recordingId = r.recording_id;
      cell(tr, timeFormat.format(new Date(r.started_at)));
      cell(tr, [r.caller_number, r.caller_name].filter(Boolean).join(" ") || "-");
      cell(tr, r.agent || "-");
      cell(tr, T["disp_" + r.disposition] || r.disposition || "-");
      cell(tr, r.duration == null ? "-" : r.duration.toFixed(1) + " " + T.seconds, "num");
      const st = cell(tr, T["st_" + r.status] || r.status);
      if (r.problem) {
        st.title = T.problem + ": " + r.problem;
        st.classList.add("problem");
      }
      cell(tr, r.evidence ? "★ " + T.yes : "", "evidence");
      const actions = cell(tr, "");
      if (r.status === "complete") {
        actions.appendChild(button(T.play, () => play(r)));
        actions.appendChild(button(T.download, () => download(r)));
      }
      tbody.appendChild(tr);
    }
  }

  async function search(append) {
    $("message").textContent = T.loading;
    const q = new URLSearchParams(lastQuery);
    if (append && nextCursor) q.set("cursor", nextCursor);
    try {
      const page = await api("/api/recordings?" + q.toString());
      show(page.items, append);
      nextCursor = page.next;
      $("more").hidden = !nextCursor;
      $("message").textContent = page.items.length || append ? "" : T.no_results;
    } catch (e) {
      $("message").textContent = e.message;
    }
  }

  async function play(r) {
    try {
      const access = await post(`/api/recordings/${r.recording_id}/access`, { action: "play" });
      $("player").hidden = false;
      $("playing").textContent = `${timeFormat.format(new Date(r.started_at))} ${r.caller_number}`;
      const audio = $("audio");
      audio.src = access.url;
      audio.dataset.recordingId = r.recording_id;
      await audio.play();
    } catch (e) {
      $("message").textContent = e.message;
    }
  }

  async function download(r) {
    try {
      const access = await post(`/api/recordings/${r.recording_id}/access`, { action: "download" });
      const a = document.createElement("a");
      a.href = access.url;
      a.download = "";
      document.body.appendChild(a);
      a.click();
      a.remove();
    } catch (e) {
      $("message").textContent = e.message;
    }
  }

  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    lastQuery = query(event.target);
    nextCursor = null;
    search(false);
  });
  $("more").addEventListener("click", () => search(true));
  $("logout").addEventListener("click", async () => {
    await post("/api/logout").catch(() => null);
    location.href = "/login";
  });
  lastQuery = query($("search"));
  search(false);
})();
