// One context: its header (title, type, state, revision, live) and its tabs, each a URL:
// #/contexts/<id>/conversation, /sent, /room, /fields, /history, /versions/<v>, /diff.

import { contextPath, get } from "../api.js";
import { badge, failure, fill, format, h, loading } from "../dom.js";
import { live } from "../live.js";
import { contextHref } from "../router.js";
import * as conversation from "./conversation.js";
import * as fields from "./fields.js";
import * as history from "./history.js";
import * as room from "./room.js";
import * as sent from "./sent.js";

const TABS = {
  conversation: [
    ["conversation", "Conversation", conversation],
    ["sent", "As sent", sent],
    ["history", "History", history],
    ["fields", "Fields", fields],
  ],
  collaborative: [
    ["room", "Room", room],
    ["history", "History", history],
    ["fields", "Fields", fields],
  ],
  other: [
    ["fields", "Fields", fields],
    ["history", "History", history],
  ],
};

const tabsOf = (type) => TABS[type] ?? TABS.other;

/** The tab a route shows: versions/<v> and diff are History's. */
function tabName(route, type) {
  if (route.params.version || route.params.tab === "diff") return "history";
  return route.params.tab ?? tabsOf(type)[0][0];
}

let shell = null; // {id, element, body, context, stop, cleanup}

/** Show why a view failed, with a way to try again (by itself once the server is back). */
function retryable(body, error) {
  const retry = () => window.dispatchEvent(new HashChangeEvent("hashchange"));
  fill(body, failure(error), h("button", { type: "button", onClick: retry }, "Try again"));
  if (error.code !== "unreachable") return;
  const again = ({ detail }) => {
    if (detail.state !== "open") return;
    live.removeEventListener("state", again);
    if (body.isConnected) retry();
  };
  live.addEventListener("state", again);
}

function headerOf(context) {
  return h(
    "div",
    { class: "context-head" },
    h(
      "div",
      { class: "crumbs" },
      h("a", { href: "#/" }, "Contexts"),
      " / ",
      h("code", { title: context.context_id }, format.short(context.context_id)),
    ),
    h("h1", {}, context.title),
    h(
      "div",
      { class: "meta" },
      badge(context.context_type),
      badge(context.state),
      h("span", { class: "rev", "data-revision": context.revision }, `revision ${context.revision}`),
      context.owner_id ? h("span", { class: "muted" }, `owner ${context.owner_id}`) : null,
      h("span", { class: "muted" }, `changed ${format.ago(context.last_modified)}`),
    ),
    context.description ? h("p", { class: "description" }, context.description) : null,
  );
}

function tabBar(context, active) {
  return h(
    "nav",
    { class: "tabs", role: "tablist", "aria-label": "Views of this context" },
    tabsOf(context.context_type).map(([name, label], index) =>
      h(
        "a",
        {
          role: "tab",
          href: contextHref(context.context_id, `/${name}`),
          "aria-selected": String(name === active),
          tabindex: name === active ? "0" : "-1",
          title: `${label} (${index + 1})`,
        },
        label,
      ),
    ),
  );
}

async function open(main, id, route) {
  fill(main, loading("Loading the context…"));
  const context = await get(contextPath(id), { include_messages: false });
  const head = h("div", {}, headerOf(context));
  const tabs = h("div");
  const body = h("div", { class: "tab-body", role: "tabpanel" });
  const element = h("section", { class: "page context", dataset: { context: id } }, head, tabs, body);
  fill(main, element);
  const current = { id, element, head, tabs, body, context, cleanup: null };
  let pending = null;
  const refresh = async () => {
    try {
      current.context = await get(contextPath(id), { include_messages: false });
      fill(head, headerOf(current.context));
    } catch {
      // the context went away: the tab says so
    }
  };
  const stop = live.follow(id, context.revision, (event) => {
    if ((event.branch ?? "main") !== "main") return;
    clearTimeout(pending); // a burst of changes redraws the header once
    pending = setTimeout(refresh, 150);
  });
  current.stop = () => {
    clearTimeout(pending);
    stop();
  };
  return current;
}

export async function show(main, route) {
  const id = route.params.id;
  try {
    if (!shell || shell.id !== id || !main.contains(shell.element)) {
      const opened = await open(main, id, route);
      if (!route.isCurrent()) {
        opened.stop();
        return () => {};
      }
      shell = opened;
    }
  } catch (error) {
    fill(main, h("section", { class: "page" }, failure(error), h("p", {}, h("a", { href: "#/" }, "Back to the contexts"))));
    shell = null;
    return () => {};
  }
  const current = shell;
  const active = tabName(route, current.context.context_type);
  const tab = tabsOf(current.context.context_type).find(([name]) => name === active) ?? tabsOf(current.context.context_type)[0];
  fill(current.tabs, tabBar(current.context, tab[0]));
  // A fresh panel per view: whatever a view left running writes into a detached one.
  const body = h("div", { class: "tab-body", role: "tabpanel" }, loading());
  current.body.replaceWith(body);
  current.body = body;
  let cleanup = null;
  try {
    cleanup = await tab[2].show(body, { id, context: current.context, route });
  } catch (error) {
    retryable(body, error);
  }
  if (!route.isCurrent()) {
    cleanup?.(); // another route came while this view loaded
    return () => {};
  }
  current.cleanup = cleanup;
  // Leaving the view stops it; leaving the context stops the header's following too.
  return (next) => {
    current.cleanup?.();
    current.cleanup = null;
    if (next?.page?.show === show && next.params.id === id) return;
    current.stop?.();
    if (shell === current) shell = null;
  };
}
