"use strict";
// The agent desk: screen pops over /ws/agent (reconnecting, resuming from the last seq seen),
// the caller's file, the handbook's phrases, complaints. Everything is put in with textContent:
// caller data is never parsed as HTML.
(() => {
  const T = JSON.parse(document.getElementById("i18n").textContent);
  const C = JSON.parse(document.getElementById("config").textContent);
  // status -> the statuses a complaint may move to (from domain/complaints.py, via the page)
  const MOVES = JSON.parse(document.getElementById("complaint-rules").textContent);
  const $ = (id) => document.getElementById(id);
  const state = { seq: 0, pop: null, steps: [], followUp: null, opening: 0 };
  window.deskFrames = [];  // every pop received, in order (the browser tests read it)

  function say(text) { $("message").textContent = text || ""; }
  function errorText(status, body) {
    return (T["err_" + body.error] || "") + " " + JSON.stringify(body) + " (" + status + ")";
  }
  async function api(method, url, body) {
    const r = await fetch(url, {
      method, credentials: "same-origin",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({}));
    if (r.status === 401) { location.href = "/login?next=/desk"; }
    return { ok: r.ok, status: r.status, data };
  }
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fill(id, items, make) {
    const box = $(id);
    box.replaceChildren(...items.map(make));
  }
  function when(iso) {
    if (!iso) return "";
    const d = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
    return d.toLocaleString(C.lang, { timeZone: C.timezone || undefined });
  }

  function render(pop) {
    state.pop = pop;
    const call = pop.call;
    $("pop").dataset.kind = pop.kind;
    $("pop").dataset.callId = call.call_id;
    $("pop-kind").textContent = T["kind_" + pop.kind] || pop.kind;
    $("no-call").hidden = true;
    $("pop-body").hidden = false;
    $("caller-name").textContent = pop.customer.name || call.caller_name || "";
    $("caller-number").textContent = call.caller_number;
    const bl = pop.blacklist;
    $("blacklist").hidden = !bl;
    $("blacklist").textContent = bl ? T.blacklisted + " (" + bl.status + "): " + bl.reason : "";
    const li = (p) => el("li", p.text);
    fill("phrases", pop.phrases.phase, li);
    fill("abuse", pop.phrases.abuse, li);
    fill("closing", pop.phrases.closing, li);
    const form = $("customer");
    if (!form.contains(document.activeElement)) {
      form.elements.name.value = pop.customer.name;
      form.elements.notes.value = pop.customer.notes;
      form.elements.tags.value = pop.customer.tags.join(", ");
    }
    form.dataset.version = pop.customer.version;
    fill("history", pop.history, (h) => {
      const tr = el("tr");
      tr.append(el("td", when(h.at)), el("td", h.agent), el("td", T["disp_" + h.disposition] || h.disposition),
                el("td", h.duration == null ? "" : Math.round(h.duration) + T.seconds));
      return tr;
    });
    if (state.followUp && state.followUp.callId !== call.call_id) closeFollowUp();
    renderOpenItems(pop);
  }

  // -- complaint follow-up: only this caller's complaints (from the pop), only via the agent's
  // own endpoints; the server refuses complaints of callers not on the agent's live or recent
  // calls (404).
  function statusText(status) { return T["cs_" + status] || status; }
  function renderOpenItems(pop) {
    fill("open-items", [
      ...pop.complaints.map((c) => {
        const item = el("li", null, "complaint");
        item.dataset.complaintId = c.id;
        const st = el("span", statusText(c.status), "status");
        st.dataset.status = c.status;
        const go = el("button", T.follow_up, "follow-up");
        go.type = "button";
        go.addEventListener("click", () => openFollowUp(c.id));
        item.append(el("span", T.complaint + " #" + c.id + " " + c.category + " · "), st, " ", go);
        return item;
      }),
      ...pop.callbacks.map((c) => el("li", T.callback_due + " " + when(c.due_at) + " · " + c.note)),
    ], (x) => x);
  }
  function complaintError(r) {
    const text = r.status === 404 ? T.err_complaint_not_found
      : r.status === 409 ? T.err_complaint_conflict
      : T["err_" + (r.data && r.data.error)] || T.err_server_error;
    return text + (r.data && r.data.message ? " (" + r.data.message + ")" : "") + " [" + r.status + "]";
  }
  function closeFollowUp() {
    state.followUp = null;
    $("follow-up").hidden = true;
  }
  function historyLine(h) {
    const d = h.detail || {};
    const parts = [when(h.at), h.actor, T["hist_" + h.action] || h.action];
    if (d.status) parts.push(statusText(d.status));
    if (d.category && h.action === "created") parts.push(d.category);
    const line = el("li", parts.filter(Boolean).join(" · "));
    if (d.note) line.append(el("div", d.note, "note"));
    return line;
  }
  // The history comes from GET /api/desk/complaints/{id}, which the server allows while the
  // complaint's caller is on one of the agent's live or recent calls (whoever filed it). If
  // that is refused, the pop's own line (category, status) is all there is.
  async function openFollowUp(id) {
    const mine = ++state.opening;  // a later click (or the reload after a move) wins
    const r = await api("GET", "/api/desk/complaints/" + encodeURIComponent(id));
    if (mine !== state.opening) return;
    const listed = state.pop ? state.pop.complaints.find((c) => c.id === id) : null;
    if (!r.ok && !(r.status === 404 && listed)) {
      closeFollowUp();
      say(complaintError(r));
      return;
    }
    const c = r.ok ? r.data : { ...listed, steps: [], history: null };
    state.followUp = { id: c.id, status: c.status, callId: state.pop ? state.pop.call.call_id : null };
    $("follow-up").hidden = false;
    $("follow-up").dataset.complaintId = c.id;
    $("fu-title").textContent = "#" + c.id + " " + c.category + " · " + statusText(c.status);
    $("fu-steps-box").hidden = !r.ok;
    fill("fu-steps", state.steps.map((label, i) => [label, (c.steps || [])[i] || ""]),
      ([label, text]) => { const li = el("li", label); li.append(el("div", text, "note")); return li; });
    if (r.ok) fill("fu-history", c.history || [], historyLine);
    else fill("fu-history", [T.history_unavailable], (t) => el("li", t, "unavailable"));
    const moves = MOVES[c.status] || [];
    fill("fu-status", moves, (s) => { const o = el("option", statusText(s)); o.value = s; return o; });
    $("fu-form").hidden = !moves.length;
    $("fu-message").textContent = moves.length ? "" : T.no_moves;
  }
  $("fu-close").addEventListener("click", closeFollowUp);
  $("fu-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const id = state.followUp && state.followUp.id;
    if (!id) return;
    f.elements.status.disabled = true;
    $("fu-submit").disabled = true;
    const status = f.elements.status.value;
    const r = await api("POST", "/api/desk/complaints/" + encodeURIComponent(id) + "/status",
      { status, note: f.elements.note.value });
    f.elements.status.disabled = false;
    $("fu-submit").disabled = false;
    if (!r.ok) { $("fu-message").textContent = complaintError(r); return; }
    f.elements.note.value = "";
    if (state.pop) {  // the next pop brings it from the database; show the move at once
      for (const c of state.pop.complaints) if (c.id === id) c.status = r.data.status;
      renderOpenItems(state.pop);
    }
    await openFollowUp(id);
    if (state.followUp && state.followUp.id === id) {
      $("fu-message").textContent = T.status_changed + ": " + statusText(r.data.status);
    }
  });

  // -- callbacks: the open ones, for whoever is on duty. Claiming one is what shows its number
  // (a claimed callback is a caller assigned to this agent); the others show id, reason, due
  // time and who has them. Done, cancelled (with a note) or released by the claimer.
  const cbDrafts = new Map();  // callback id -> the note being typed (kept across refreshes)
  const CB_REFRESH_MS = 30000;
  function cbSay(text, ok) {
    $("cb-message").textContent = text || "";
    $("cb-message").dataset.kind = !text ? "" : ok ? "ok" : "error";
  }
  async function cbApi(method, url, body) {
    try {
      return await api(method, url, body);
    } catch (e) {  // the server is unreachable: no status, no body
      return { ok: false, status: 0, data: { error: "network", message: String(e) } };
    }
  }
  function cbError(r) {
    const code = r.data && r.data.error;
    const text = T["err_" + code] || T["sv_err_" + code] || T.err_server_error;
    return text + (r.data && r.data.message ? " (" + r.data.message + ")" : "") + " [" + r.status + "]";
  }
  function cbButton(label, cls, handler) {
    const b = el("button", label, cls);
    b.type = "button";
    b.addEventListener("click", handler);
    return b;
  }
  function cbItem(c) {
    const li = el("li", null, "callback");
    li.dataset.callbackId = c.id;
    const late = new Date(c.due_at).getTime() <= Date.now();
    li.classList.toggle("overdue", late);
    li.classList.toggle("mine", Boolean(c.mine));
    li.classList.toggle("taken", Boolean(c.assigned_to) && !c.mine);
    const head = el("div", null, "head");
    head.append(el("span", "#" + c.id + " " + (T["cb_" + c.reason] || c.reason), "reason"), " · ",
                el("span", when(c.due_at), "due"));
    if (late) head.append(" ", el("span", T.overdue, "badge"));
    li.append(head);
    if (c.mine) {
      li.append(el("div", c.caller_number, "number"));
      if (c.note) li.append(el("div", c.note, "note"));
      if (c.complaint_id) li.append(el("div", T.cb_linked_complaint + " #" + c.complaint_id, "complaint"));
      const note = el("textarea", null, "cb-note");
      note.rows = 2;
      note.maxLength = 4000;
      note.placeholder = T.cb_note_hint;
      note.setAttribute("aria-label", T.note);
      note.value = cbDrafts.get(c.id) || "";
      note.addEventListener("input", () => cbDrafts.set(c.id, note.value));
      const bar = el("div", null, "cb-actions");
      bar.append(cbButton(T.cb_done, "done", () => closeCallback(li, c, "done")),
                 cbButton(T.cb_cancel, "cancel", () => closeCallback(li, c, "cancelled")),
                 cbButton(T.cb_release, "release", () => cbAct(li,
                   () => cbApi("POST", "/api/desk/callbacks/" + c.id + "/release", {}),
                   () => T.cb_released_msg + " #" + c.id)));
      li.append(note, bar);
    } else if (c.assigned_to) {
      li.append(el("div", T.cb_taken + ": " + c.assigned_to, "taken-by"));
    } else {
      li.append(cbButton(T.cb_claim, "claim", () => cbAct(li,
        () => cbApi("POST", "/api/desk/callbacks/" + c.id + "/claim", {}),
        () => T.cb_claimed_msg + " #" + c.id)));
    }
    return li;
  }
  // One action from a callback's line: its buttons are off meanwhile; the list is reloaded
  // after it, also after a refusal (someone else may have claimed or closed it).
  async function cbAct(li, work, done) {
    li.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    const r = await work();
    if (r.ok) cbSay(done(r.data), true); else cbSay(cbError(r), false);
    await loadCallbacks(true);
    return r;
  }
  async function closeCallback(li, c, status) {
    const note = li.querySelector("textarea.cb-note").value;
    if (status === "cancelled" && !note.trim()) {
      cbSay(T.cb_need_note, false);
      li.querySelector("textarea.cb-note").focus();
      return;
    }
    const r = await cbAct(li,
      () => cbApi("POST", "/api/desk/callbacks/" + c.id + "/close", { status, note }),
      () => (status === "done" ? T.cb_done_msg : T.cb_cancelled_msg) + " #" + c.id);
    if (r.ok) cbDrafts.delete(c.id);
  }
  async function loadCallbacks(keepMessage) {
    const r = await cbApi("GET", "/api/desk/callbacks");
    if (!r.ok) { cbSay(cbError(r), false); return; }
    const list = r.data.callbacks.slice().sort((a, b) => Number(Boolean(b.mine)) - Number(Boolean(a.mine)));
    if (list.length) fill("callbacks", list, cbItem);
    else fill("callbacks", [T.cb_none], (t) => el("li", t, "empty"));
    $("callbacks").dataset.loaded = "true";
    if (!keepMessage) cbSay("");
  }
  $("cb-refresh").addEventListener("click", () => loadCallbacks(false));
  setInterval(() => {  // not while a note is being typed into the list
    if (!$("callbacks").contains(document.activeElement)) loadCallbacks(true);
  }, CB_REFRESH_MS);

  function onFrame(frame) {
    if (frame.type === "pop") {
      if (frame.seq <= state.seq) return;  // a resume may repeat what we had
      state.seq = frame.seq;
      window.deskFrames.push(frame);
      render(frame);
      if (frame.kind === "ended") loadMe();
    } else if (frame.type === "hello") {
      $("link").dataset.state = "up";
      $("link").textContent = T.connected;
    } else if (frame.type === "error") {
      say(JSON.stringify(frame));
    }
  }

  let backoff = 250;
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/ws/agent?lang=" + encodeURIComponent(C.lang));
    ws.onopen = () => {
      backoff = 250;
      if (state.seq > 0) ws.send(JSON.stringify({ type: "resume", after: state.seq }));
    };
    ws.onmessage = (m) => { try { onFrame(JSON.parse(m.data)); } catch (e) { say(String(e)); } };
    ws.onclose = (ev) => {
      $("link").dataset.state = "down";
      $("link").textContent = T.reconnecting;
      if (ev.code === 4401) { location.href = "/login?next=/desk"; return; }
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
    window.deskSocket = ws;
  }

  async function loadMe() {
    const r = await api("GET", "/api/desk/me?lang=" + encodeURIComponent(C.lang));
    if (!r.ok) { say(errorText(r.status, r.data)); return null; }
    const me = r.data;
    $("shift").textContent = me.shift ? when(me.shift.start) + " – " + when(me.shift.end) + " (" + me.shift.role + ")" : T.no_shift;
    fill("recent", me.recent, (c) => el("li", when(c.at) + " " + (c.name || "") + " " + c.caller + " · " + (T["disp_" + c.disposition] || c.disposition || "")));
    await loadCallbacks(true);
    if (!state.steps.length) {
      state.steps = me.complaint_steps;
      fill("steps", me.complaint_steps, (s, i) => {
        const item = el("li");
        const label = el("label", s);
        const area = el("textarea"); area.name = "step" + i; area.rows = 2;
        label.append(area); item.append(label);
        return item;
      });
    }
    return me;
  }

  function isoOf(local) { return local ? new Date(local).toISOString() : null; }
  function callId() { return state.pop ? state.pop.call.call_id : null; }

  $("actions").addEventListener("click", async (ev) => {
    const action = ev.target.dataset && ev.target.dataset.action;
    if (!action) return;
    const r = action === "evidence"
      ? await api("POST", "/api/evidence", { call_id: callId(), kind: "abuse", reason: "flagged from the desk" })
      : await api("POST", "/api/calls/current/" + action, {});
    say(r.ok ? action + ": OK" : errorText(r.status, r.data));
  });
  $("customer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const r = await api("PUT", "/api/desk/calls/" + encodeURIComponent(callId()) + "/customer", {
      version: Number(f.dataset.version), name: f.elements.name.value, notes: f.elements.notes.value,
      tags: f.elements.tags.value.split(",").map((t) => t.trim()).filter(Boolean),
    });
    if (r.ok) { f.dataset.version = r.data.version; say(T.saved); } else { say(errorText(r.status, r.data)); }
  });
  $("complaint").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const steps = state.steps.map((_, i) => f.elements["step" + i].value);
    const due = isoOf(f.elements.callback_due.value);
    const r = await api("POST", "/api/desk/calls/" + encodeURIComponent(callId()) + "/complaints", {
      category: f.elements.category.value, steps,
      promised_at: isoOf(f.elements.promised_at.value),
      callback: due ? { due_at: due, note: f.elements.callback_note.value } : null,
    });
    say(r.ok ? T.complaint_saved + " #" + r.data.id + " (" + r.data.status + ")" : errorText(r.status, r.data));
    if (r.ok) f.dataset.saved = r.data.id;
  });
  $("suggestion").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const r = await api("POST", "/api/desk/calls/" + encodeURIComponent(callId()) + "/suggestions",
      { text: f.elements.text.value, department: f.elements.department.value });
    say(r.ok ? T.saved : errorText(r.status, r.data));
  });
  $("propose").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("POST", "/api/desk/calls/" + encodeURIComponent(callId()) + "/blacklist",
      { reason: ev.target.elements.reason.value });
    say(r.ok ? T.saved : errorText(r.status, r.data));
  });
  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout").catch(() => null);
    location.href = "/login";
  });

  loadMe().then(async (me) => {
    if (me && me.current) {
      const r = await api("GET", "/api/desk/calls/" + encodeURIComponent(me.current) + "?lang=" + encodeURIComponent(C.lang));
      if (r.ok && !state.pop) render(r.data);
    }
    connect();
  });
})();
