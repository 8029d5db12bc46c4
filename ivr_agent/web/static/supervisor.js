"use strict";
// The supervisors' console: blacklist decisions, open callbacks, subscriber search, roster change
// requests, who is on duty, alerts. Every value from the server goes in with textContent (caller
// names, reasons and notes are caller- or agent-typed), never as HTML.
(() => {
  const T = JSON.parse(document.getElementById("i18n").textContent);
  const C = JSON.parse(document.getElementById("config").textContent);
  const $ = (id) => document.getElementById(id);
  const timeFormat = new Intl.DateTimeFormat(C.lang, {
    timeZone: C.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false,
  });
  const REFRESH_MS = 30000;  // on duty and alerts only: they are not audited look-ups

  // -- helpers ----------------------------------------------------------------------------------

  function say(sectionId, text, ok) {
    const box = sectionId ? document.querySelector("#" + sectionId + " .msg") : $("message");
    box.textContent = text || "";
    box.dataset.kind = !text ? "" : ok ? "ok" : "error";
  }

  async function api(method, url, body) {
    let r;
    try {
      r = await fetch(url, {
        method, credentials: "same-origin",
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new Error(T.sv_err_network);
    }
    if (r.status === 401) {
      location.href = "/login?next=/supervisor";
      throw new Error(T.err_unauthenticated);
    }
    const data = await r.json().catch(() => null);
    if (!r.ok) {
      const code = (data && data.error) || "server_error";
      const text = T["sv_err_" + code] || T["err_" + code] || code;
      const detail = data && data.message ? " (" + data.message + ")" : "";
      throw new Error(text + detail + " [" + r.status + "]");
    }
    return data;
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function row(cells, data) {
    const tr = document.createElement("tr");
    for (const c of cells) tr.append(c instanceof Node ? wrap(c) : el("td", c));
    for (const [k, v] of Object.entries(data || {})) tr.dataset[k] = String(v);
    return tr;
  }

  function wrap(node) {
    if (node.tagName === "TD") return node;
    const td = el("td");
    td.append(node);
    return td;
  }

  function fill(tableId, rows) {
    const tbody = document.querySelector("#" + tableId + " tbody");
    if (rows.length) {
      tbody.replaceChildren(...rows);
    } else {
      const td = el("td", T.none, "empty");
      td.colSpan = document.querySelectorAll("#" + tableId + " thead th").length;
      const tr = document.createElement("tr");
      tr.append(td);
      tbody.replaceChildren(tr);
    }
  }

  function when(value) {
    if (value === null || value === undefined || value === "") return "";
    const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    return Number.isNaN(d.getTime()) ? String(value) : timeFormat.format(d);
  }

  function button(label, cls, handler) {
    const b = el("button", label, cls);
    b.type = "button";
    b.addEventListener("click", handler);
    return b;
  }

  function noteInput() {
    const input = el("input", null, "note");
    input.maxLength = 2000;
    input.setAttribute("aria-label", T.note);
    return input;
  }

  // Runs one action from a row: its buttons are off meanwhile, the section says how it went.
  async function act(sectionId, tr, work, done, reload) {
    const buttons = tr.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const result = await work();
      say(sectionId, done(result), true);
      await reload(true);
    } catch (e) {
      say(sectionId, e.message, false);
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // -- blacklist --------------------------------------------------------------------------------

  const decisionText = { approved: T.bl_approved, rejected: T.bl_rejected, removed: T.bl_removed };

  function decide(tr, entry, decision) {
    const note = tr.querySelector("input.note").value;
    return act("blacklist", tr,
      () => api("POST", "/api/desk/blacklist/" + entry.id + "/decision", { decision, note }),
      () => decisionText[decision] + ": " + entry.number, loadBlacklist);
  }

  async function loadBlacklist(keepMessage) {
    try {
      const [pending, active] = await Promise.all([
        api("GET", "/api/desk/blacklist?status=pending"),
        api("GET", "/api/desk/blacklist?status=approved"),
      ]);
      fill("bl-pending", pending.entries.map((b) => {
        const tr = row([b.number, b.reason, b.proposed_by, when(b.proposed_at)], { entryId: b.id });
        tr.append(wrap(noteInput()), wrap(el("span")));
        tr.lastChild.append(
          button(T.approve, "approve", () => decide(tr, b, "approved")),
          button(T.reject, "reject", () => decide(tr, b, "rejected")));
        return tr;
      }));
      fill("bl-active", active.entries.map((b) => {
        const tr = row([b.number, b.reason, b.proposed_by, b.decided_by, when(b.decided_at),
                        b.decision_note], { entryId: b.id });
        tr.append(wrap(noteInput()), wrap(button(T.remove, "remove", () => decide(tr, b, "removed"))));
        return tr;
      }));
      if (!keepMessage) say("blacklist", "");
    } catch (e) {
      say("blacklist", e.message, false);
    }
  }

  // -- callbacks --------------------------------------------------------------------------------

  // Open ones: who claimed each; closed (done, or cancelled with a note) or released back from
  // here. The last closed ones below, with who closed them.
  const cbClosedText = { done: T.cb_done_msg, cancelled: T.cb_cancelled_msg };

  function closeCallback(tr, c, status) {
    const input = tr.querySelector("input.note");
    const note = input.value;
    if (status === "cancelled" && !note.trim()) {
      say("callbacks", T.cb_need_note, false);
      input.focus();
      return null;
    }
    return act("callbacks", tr,
      () => api("POST", "/api/desk/callbacks/" + c.id + "/close", { status, note }),
      () => cbClosedText[status] + " #" + c.id + " · " + c.caller_number, loadCallbacks);
  }

  function releaseCallback(tr, c) {
    return act("callbacks", tr,
      () => api("POST", "/api/desk/callbacks/" + c.id + "/release", {}),
      () => T.cb_released_msg + " #" + c.id + " · " + c.assigned_to, loadCallbacks);
  }

  async function loadCallbacks(keepMessage) {
    try {
      const [open, overdue, closed] = await Promise.all([
        api("GET", "/api/desk/callbacks?overdue=false"),
        api("GET", "/api/desk/callbacks?overdue=true"),
        api("GET", "/api/desk/callbacks?status=closed"),
      ]);
      const late = new Set(overdue.callbacks.map((c) => c.id));
      fill("cb-table", open.callbacks.map((c) => {
        const due = el("td", when(c.due_at));
        const claimed = c.assigned_to ? c.assigned_to + " · " + when(c.claimed_at) : "";
        const tr = row([due, c.caller_number, T["cb_" + c.reason] || c.reason, c.note, c.created_by,
                        claimed], { callbackId: c.id });
        if (late.has(c.id)) {
          tr.classList.add("overdue");
          due.append(" ", el("span", T.overdue, "badge"));
        }
        if (c.assigned_to) tr.classList.add("claimed");
        const actions = el("span");
        actions.append(button(T.cb_done, "done", () => closeCallback(tr, c, "done")),
                       button(T.cb_cancel, "cancel", () => closeCallback(tr, c, "cancelled")));
        if (c.assigned_to) actions.append(button(T.cb_release, "release", () => releaseCallback(tr, c)));
        tr.append(wrap(noteInput()), wrap(actions));
        return tr;
      }));
      fill("cb-closed", closed.callbacks.map((c) => {
        const tr = row([when(c.closed_at), c.caller_number, T["cb_" + c.reason] || c.reason,
                        T["cb_status_" + c.status] || c.status, c.closed_by, c.assigned_to, c.note],
                       { callbackId: c.id, status: c.status });
        tr.classList.add("closed-" + String(c.status).replace(/[^a-z]/g, ""));
        return tr;
      }));
      if (!keepMessage) say("callbacks", "");
    } catch (e) {
      say("callbacks", e.message, false);
    }
  }

  // -- subscriber search (audited by the server) ------------------------------------------------

  $("customer-search").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = $("q").value.trim();
    if (q.length < 2) { say("search-box", T.sv_search_hint, false); return; }
    say("search-box", T.loading, true);
    try {
      const found = await api("GET", "/api/desk/search?q=" + encodeURIComponent(q));
      fill("customers", found.customers.map((c) =>
        row([c.number, c.name, c.notes, (c.tags || []).join(", ")], { number: c.number })));
      say("search-box", found.customers.length ? "" : T.sv_no_customers, true);
    } catch (e) {
      say("search-box", e.message, false);
    }
  });

  // -- roster change requests and on duty -------------------------------------------------------

  // A swap names two shifts by id (the listing says whose and when); a change says what it sets
  // (times shown in the site's zone).
  function shiftText(id, shifts) {
    const sh = (shifts || {})[String(id)];
    const label = T.shift + " #" + id;
    return sh ? label + " " + sh.agent + " " + when(sh.start) + " – " + when(sh.end) : label;
  }
  function payloadText(kind, payload, shifts) {
    const p = payload || {};
    if (kind === "swap") return shiftText(p.shift, shifts) + " ⇄ " + shiftText(p.other, shifts);
    return Object.entries(p)
      .filter(([, v]) => v !== null && v !== undefined && v !== false)
      .map(([k, v]) => k + ": " + (k === "start" || k === "end" ? when(v)
        : typeof v === "object" ? JSON.stringify(v) : v))
      .join(", ");
  }

  function decideChange(tr, change, verb) {
    const note = tr.querySelector("input.note").value;
    return act("roster", tr,
      () => api("POST", "/api/roster/requests/" + change.id + "/" + verb, { note }),
      (r) => (verb === "approve" ? T.rc_approved : T.rc_rejected) + " #" + change.id
        + ((r.warnings || []).length ? " · " + r.warnings.join("; ") : ""),
      loadRoster);
  }

  async function loadRequests() {
    const data = await api("GET", "/api/roster/requests?status=pending");
    const pending = (data.requests || []).filter((c) => !c.status || c.status === "pending");
    fill("rc-table", pending.map((c) => {
      const tr = row([c.id, T["rc_" + c.kind] || c.kind, payloadText(c.kind, c.payload, data.shifts), c.reason,
                      c.requested_by, when(c.requested_at)], { changeId: c.id });
      tr.append(wrap(noteInput()), wrap(el("span")));
      tr.lastChild.append(
        button(T.approve, "approve", () => decideChange(tr, c, "approve")),
        button(T.reject, "reject", () => decideChange(tr, c, "reject")));
      return tr;
    }));
  }

  async function loadOnDuty() {
    const data = await api("GET", "/api/roster/onduty");
    $("leader").textContent = data.leader ? "· " + T.leader + ": " + data.leader : "";
    fill("onduty", (data.agents || []).map((a) => {
      const status = (T["role_" + a.role] || a.role) + (a.on_break ? " · " + T.on_break : "");
      const tr = row([a.agent, a.display_name, status,
                      when(a.shift_start) + " – " + when(a.shift_end)], { agent: a.agent });
      if (a.on_break) tr.classList.add("on-break");
      return tr;
    }));
  }

  async function loadRoster(keepMessage) {
    const problems = [];
    await Promise.all([loadRequests(), loadOnDuty()].map((p) => p.catch((e) => problems.push(e.message))));
    if (problems.length) say("roster", problems.join(" · "), false);
    else if (!keepMessage) say("roster", "");
  }

  // -- alerts -----------------------------------------------------------------------------------

  const ALERT_FIELDS = new Set(["id", "kind", "call_id", "agent", "at", "detail",
                                 "acknowledged_by", "acknowledged_at"]);

  function acknowledge(tr, alert) {
    const note = tr.querySelector("input.note").value;
    return act("alerts", tr, () => api("POST", "/api/roster/alerts/" + alert.id + "/ack", { note }),
      () => T.alert_acked + " · " + (T["alert_" + alert.kind] || alert.kind) + " " + alert.call_id,
      loadAlerts);
  }

  async function loadAlerts(keepMessage) {
    try {
      const data = await api("GET", "/api/roster/alerts");
      fill("alert-table", (data.alerts || []).map((a) => {
        // Fields added later are shown as they come, not dropped.
        const extra = Object.entries(a).filter(([k]) => !ALERT_FIELDS.has(k))
          .map(([k, v]) => k + ": " + (typeof v === "object" ? JSON.stringify(v) : v));
        const done = a.acknowledged_at || a.acknowledged_by;
        const state = done
          ? T.acknowledged + " · " + (a.acknowledged_by || "") + " " + when(a.acknowledged_at) : "";
        const tr = row([when(a.at), T["alert_" + a.kind] || a.kind, a.agent, a.call_id,
                        [a.detail, ...extra].filter(Boolean).join(" · "), state],
                       a.id === undefined || a.id === null ? {} : { alertId: a.id });
        tr.classList.add("alert-" + String(a.kind).replace(/[^a-z_]/g, ""));
        tr.classList.toggle("acknowledged", Boolean(done));
        if (!done && a.id !== undefined && a.id !== null) {
          tr.append(wrap(noteInput()), wrap(button(T.acknowledge, "ack", () => acknowledge(tr, a))));
        } else {
          tr.append(el("td"), el("td"));
        }
        return tr;
      }));
      if (!keepMessage) say("alerts", "");
    } catch (e) {
      say("alerts", e.message, false);
    }
  }

  // -- wiring -----------------------------------------------------------------------------------

  const loaders = { blacklist: loadBlacklist, callbacks: loadCallbacks, roster: loadRoster,
                    alerts: loadAlerts };
  document.querySelectorAll("button.refresh").forEach((b) => {
    b.addEventListener("click", () => loaders[b.dataset.load]());
  });
  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout", {}).catch(() => null);
    location.href = "/login";
  });
  Promise.all(Object.values(loaders).map((load) => load())).then(() => {
    document.body.dataset.loaded = "true";  // the browser tests wait for the first load
  });
  setInterval(() => { loadAlerts(true); loadOnDuty().catch(() => null); }, REFRESH_MS);
})();
