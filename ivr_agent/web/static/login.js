"use strict";
(() => {
  const T = JSON.parse(document.getElementById("i18n").textContent);
  const form = document.getElementById("login");
  const message = document.getElementById("message");
  // Only a same-site path: never an open redirect to another origin.
  const wanted = new URLSearchParams(location.search).get("next") || "/recordings";
  const next = /^\/(?!\/)/.test(wanted) ? wanted : "/recordings";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    const body = {
      name: document.getElementById("name").value,
      password: document.getElementById("password").value,
    };
    try {
      const r = await fetch("/api/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (r.ok) {
        location.href = next;
        return;
      }
      const err = await r.json().catch(() => ({}));
      message.textContent = T["err_" + err.error] || err.message || T.err_server_error;
    } catch (e) {
      message.textContent = T.err_server_error;
    }
  });
})();
