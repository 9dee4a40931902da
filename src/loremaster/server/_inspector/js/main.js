// The inspector's start: the routes, the connection indicator, the keyboard.

import { whoAmI } from "./api.js";
import { actAs, actingAs, forgetToken } from "./auth.js";
import { confirmDialog } from "./dialog.js";
import { fill, format, h, typing } from "./dom.js";
import { keyboardHelp, listKeys } from "./keys.js";
import { live } from "./live.js";
import * as contextPage from "./pages/context.js";
import * as contexts from "./pages/contexts.js";
import * as stats from "./pages/stats.js";
import { current, go, route } from "./router.js";

route("/", contexts);
route("/contexts", contexts);
route("/stats", stats);
route("/contexts/:id", contextPage);
route("/contexts/:id/versions/:version", contextPage);
route("/contexts/:id/:tab", contextPage);

const main = document.getElementById("main");
let shown = null; // {page, cleanup(nextRoute)}
let generation = 0;

async function render() {
  const next = current();
  const mine = (generation += 1);
  next.isCurrent = () => mine === generation;
  for (const link of document.querySelectorAll(".nav a")) {
    const section = next.path.startsWith("/stats") ? "stats" : "contexts";
    link.toggleAttribute("aria-current", link.dataset.section === section);
  }
  shown?.cleanup?.(next); // the page left stops what it follows (it may keep what `next` reuses)
  shown = null;
  if (!next.page) {
    fill(main, h("section", { class: "page" }, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the contexts"))));
    return;
  }
  const cleanup = await next.page.show(main, next);
  if (!next.isCurrent()) {
    cleanup?.(current()); // another route came while this one loaded
    return;
  }
  shown = { page: next.page, cleanup };
}

function showConnection() {
  const indicator = document.getElementById("connection");
  const notice = document.getElementById("notice");
  const labels = { idle: "idle", connecting: "connecting…", open: "live", lost: "connection lost" };
  live.addEventListener("state", ({ detail }) => {
    indicator.dataset.state = detail.state;
    indicator.querySelector(".label").textContent = labels[detail.state];
    const lost = detail.state === "lost";
    notice.hidden = !lost;
    if (lost) {
      fill(notice, h("strong", {}, "Connection lost"), ` — ${detail.detail} Changes made meanwhile will appear when it is back.`);
    }
  });
}

async function chooseUser() {
  const input = h("input", { name: "user", value: actingAs() ?? "", placeholder: "(the trusted local caller)", "aria-label": "User name", maxlength: 200 });
  const body = h(
    "div",
    {},
    h("p", {}, "In local mode this tab may act as a named user (the X-Loremaster-User header): it sees what that user may see, and holds locks, seats and presence under that name. Leave it empty to be the trusted local caller."),
    h("label", { class: "field" }, h("span", {}, "Act as"), input),
  );
  const values = await confirmDialog({ title: "Act as a user", body, confirm: "Switch", id: "act-as" });
  if (!values) return;
  actAs(values.get("user").trim());
  location.reload();
}

async function showWho() {
  const who = document.getElementById("who");
  let me;
  try {
    me = await whoAmI();
  } catch {
    return;
  }
  if (me.local_mode) {
    fill(who, h("button", { type: "button", class: "ghost", title: "Local mode: act as another user", onClick: chooseUser }, `${me.name} · local mode`));
    return;
  }
  const signOut = h("button", { type: "button", class: "ghost", onClick: () => { forgetToken(); location.reload(); } }, "Sign out");
  fill(who, h("span", { class: "muted" }, `${me.name} `), signOut);
}

function keyboard() {
  let prefix = null;
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    if (document.querySelector("dialog[open]")) return;
    if (prefix === "g") {
      prefix = null;
      if (event.key === "c") go("/");
      if (event.key === "s") go("/stats");
      return;
    }
    if (event.key === "g") {
      prefix = "g";
      setTimeout(() => (prefix = null), 1200);
    } else if (event.key === "?") {
      keyboardHelp();
    } else if (event.key === "/") {
      const search = main.querySelector("[data-search]");
      if (search) {
        event.preventDefault();
        search.focus();
      }
    } else {
      listKeys(event, main);
    }
  });
  document.getElementById("help").addEventListener("click", keyboardHelp);
}

/** Keep every "3m ago" true without redrawing anything else. */
function tickTimes() {
  setInterval(() => {
    for (const time of document.querySelectorAll("time.ago")) time.textContent = format.ago(time.dateTime);
  }, 15000);
}

showConnection();
showWho();
tickTimes();
keyboard();
window.addEventListener("hashchange", render);
window.addEventListener("loremaster:signed-in", showWho);
render();
