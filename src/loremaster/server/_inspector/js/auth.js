// Who the inspector is to the server. Local mode needs nothing. A server with API keys or
// JWTs answers 401: the user gives a token once, kept for this tab only (sessionStorage).

import { h } from "./dom.js";

const TOKEN_KEY = "loremaster.token";
const USER_KEY = "loremaster.user";
let asking = null;

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** In local mode, the user this tab acts as (null: the trusted local caller). */
export function actingAs() {
  return sessionStorage.getItem(USER_KEY);
}

export function actAs(name) {
  if (name) sessionStorage.setItem(USER_KEY, name);
  else sessionStorage.removeItem(USER_KEY);
}

export function authHeaders() {
  const saved = token();
  if (saved) return { Authorization: `Bearer ${saved}` };
  const user = actingAs();
  return user ? { "X-Loremaster-User": user } : {};
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Show the sign-in dialog; resolves once a token is saved (one dialog at a time). */
export function askForToken(reason) {
  asking ??= new Promise((resolve) => {
    const input = h("input", {
      type: "password",
      name: "token",
      required: true,
      autocomplete: "off",
      "aria-label": "Bearer token",
      placeholder: "API key or JWT",
    });
    const dialog = h(
      "dialog",
      { class: "dialog", id: "sign-in", "aria-labelledby": "sign-in-title" },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: "sign-in-title" }, "Sign in"),
        h(
          "p",
          {},
          "This server needs a bearer token (an API key or a JWT). It is kept for this tab only.",
        ),
        reason ? h("p", { class: "muted" }, reason) : null,
        input,
        h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, "Sign in")),
      ),
    );
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    dialog.addEventListener("close", () => {
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      dialog.remove();
      asking = null;
      window.dispatchEvent(new Event("loremaster:signed-in"));
      resolve();
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
  return asking;
}
