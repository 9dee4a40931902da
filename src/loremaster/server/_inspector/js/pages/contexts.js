// The contexts: filters by type and state, full-text search, pages by cursor, and live
// rows (a context changed anywhere moves to the top of the first page).

import { contextPath, get } from "../api.js";
import { ago, badge, failure, fill, format, h, loading } from "../dom.js";
import { live } from "../live.js";
import { contextHref, go } from "../router.js";

const PAGE = 25;
const POLL_MS = 5000;
const TYPES = ["conversation", "collaborative", "session", "generic"];
const STATES = ["active", "archived", "deleted"];

// Cursors of the pages before the current one, so "previous" works without the server.
const earlier = [];

function filters(query) {
  const select = (name, label, options) =>
    h(
      "label",
      { class: "field" },
      h("span", {}, label),
      h(
        "select",
        {
          name,
          onChange: (event) => go("/contexts", { ...query, [name]: event.target.value, cursor: null }),
        },
        h("option", { value: "" }, name === "state" ? "active & archived" : "all"),
        options.map((value) => h("option", { value, selected: query[name] === value }, value)),
      ),
    );
  const search = h("input", {
    type: "search",
    name: "q",
    value: query.q ?? "",
    placeholder: "Search titles, descriptions, messages…",
    "aria-label": "Full-text search",
    "data-search": true,
  });
  const form = h(
    "form",
    {
      class: "toolbar",
      role: "search",
      onSubmit: (event) => {
        event.preventDefault();
        go("/contexts", { ...query, q: search.value.trim(), cursor: null });
      },
    },
    h("label", { class: "field grow" }, h("span", {}, "Search"), search),
    select("type", "Type", TYPES),
    select("state", "State", STATES),
  );
  return form;
}

function row(context, hit = null) {
  const counts =
    context.context_type === "conversation"
      ? `${format.int(context.message_count)} messages`
      : context.context_type === "collaborative"
        ? `${(context.active_participants ?? []).length} present`
        : "";
  return h(
    "a",
    {
      class: "row",
      href: hit?.message_seq ? contextHref(context.context_id, "/conversation", { seq: hit.message_seq, branch: hit.branch }) : contextHref(context.context_id),
      "data-row": true,
      dataset: { id: context.context_id },
    },
    h(
      "span",
      { class: "title" },
      h("strong", {}, context.title),
      h("small", { class: "muted snippet" }, hit?.snippet ?? context.description ?? ""),
    ),
    h("span", { class: "kind" }, badge(context.context_type)),
    h("span", { class: "state" }, badge(context.state)),
    h("span", { class: "count muted" }, counts),
    h("span", { class: "rev", title: "revision" }, `r${context.revision}`),
    h("span", { class: "when" }, ago(context.last_modified)),
  );
}

function header() {
  return h(
    "div",
    { class: "row head", "aria-hidden": "true" },
    h("span", {}, "Title"),
    h("span", {}, "Type"),
    h("span", {}, "State"),
    h("span", {}, ""),
    h("span", {}, "Rev"),
    h("span", {}, "Changed"),
  );
}

/** Move `element` to the top of `list`, sliding rows instead of jumping (FLIP). */
function toTop(list, element) {
  const rows = [...list.children];
  const before = new Map(rows.map((r) => [r, r.getBoundingClientRect().top]));
  list.prepend(element);
  for (const r of rows) {
    const delta = before.get(r) - r.getBoundingClientRect().top;
    if (delta) r.animate([{ transform: `translateY(${delta}px)` }, { transform: "none" }], { duration: 250, easing: "ease-out" });
  }
  element.classList.remove("flash");
  void element.offsetWidth;
  element.classList.add("flash");
}

class LiveList {
  constructor(list, query) {
    this.list = list;
    this.query = query;
    this.stops = new Map();
    this.onTop = !query.cursor && !query.q;
  }

  follow(context) {
    const stop = live.follow(context.context_id, context.revision, () => this.changed(context.context_id));
    this.stops.set(context.context_id, stop);
  }

  matches(context) {
    const { type, state } = this.query;
    if (type && context.context_type !== type) return false;
    return state ? context.state === state : context.state !== "deleted";
  }

  async changed(id) {
    let context;
    try {
      context = await get(contextPath(id), { include_messages: false, include_deleted: true });
    } catch {
      return;
    }
    const old = this.list.querySelector(`[data-id="${CSS.escape(id)}"]`);
    if (!old) return;
    if (!this.matches(context)) {
      this.stops.get(id)?.();
      this.stops.delete(id);
      old.remove();
      return;
    }
    const fresh = row(context);
    const focused = document.activeElement === old;
    old.replaceWith(fresh);
    if (this.onTop) toTop(this.list, fresh);
    if (focused) fresh.focus({ preventScroll: true });
  }

  /** Page one only: contexts that appeared since, at the top, the page kept its length. */
  async poll() {
    const page = await get("/v1/contexts", this.params(null));
    const newcomers = page.items.filter((c) => !this.stops.has(c.context_id)).reverse();
    for (const context of newcomers) {
      const element = row(context);
      this.list.prepend(element);
      toTop(this.list, element);
      this.follow(context);
    }
    while (this.list.children.length > PAGE) {
      const last = this.list.lastElementChild;
      this.stops.get(last.dataset.id)?.();
      this.stops.delete(last.dataset.id);
      last.remove();
    }
  }

  params(cursor) {
    return { context_type: this.query.type, state: this.query.state, limit: PAGE, cursor };
  }

  stop() {
    for (const stop of this.stops.values()) stop();
    this.stops.clear();
  }
}

function pager(query, nextCursor) {
  const previous = h(
    "button",
    {
      type: "button",
      "data-page": "previous",
      disabled: !query.cursor,
      onClick: () => {
        const cursor = earlier.pop() ?? null;
        go("/contexts", { ...query, cursor });
      },
    },
    earlier.length || !query.cursor ? "← Previous" : "← First page",
  );
  const next = h(
    "button",
    {
      type: "button",
      "data-page": "next",
      disabled: !nextCursor,
      onClick: () => {
        earlier.push(query.cursor ?? null);
        go("/contexts", { ...query, cursor: nextCursor });
      },
    },
    "Next →",
  );
  return h("nav", { class: "pager", "aria-label": "Pages" }, previous, next);
}

async function searchHits(query) {
  const hits = await get("/v1/search", { q: query.q, limit: 50 });
  const wanted = hits.filter((hit) => !query.type || hit.context_type === query.type);
  const contexts = await Promise.all(
    wanted.map((hit) => get(contextPath(hit.context_id), { include_messages: false }).catch(() => null)),
  );
  return wanted.map((hit, i) => [contexts[i], hit]).filter(([context]) => context && (!query.state || context.state === query.state));
}

export async function show(main, route) {
  const query = route.query;
  if (!query.cursor) earlier.length = 0;
  const list = h("div", { class: "rows", role: "list", "aria-label": "Contexts" });
  const status = h("p", { class: "muted status" });
  const page = h(
    "section",
    { class: "page contexts" },
    h("h1", {}, query.q ? `Search: ${query.q}` : "Contexts"),
    filters(query),
    h("div", { class: "table" }, header(), list),
    status,
  );
  fill(main, page);
  list.append(loading("Loading contexts…", "9.75rem"));
  const rows = new LiveList(list, query);
  let timer = null;
  try {
    if (query.q) {
      const found = await searchHits(query);
      if (!route.isCurrent()) return () => rows.stop();
      fill(list, found.map(([context, hit]) => row(context, hit)));
      found.forEach(([context]) => rows.follow(context));
      status.textContent = found.length ? `${found.length} found` : "Nothing found.";
    } else {
      const result = await get("/v1/contexts", rows.params(query.cursor));
      if (!route.isCurrent()) return () => rows.stop();
      fill(list, result.items.map((context) => row(context)));
      result.items.forEach((context) => rows.follow(context));
      status.textContent = result.items.length ? "" : "No contexts yet.";
      page.append(pager(query, result.next_cursor));
      if (rows.onTop) timer = setInterval(() => rows.poll().catch(() => {}), POLL_MS);
    }
  } catch (error) {
    fill(list, failure(error));
  }
  return () => {
    clearInterval(timer);
    rows.stop();
  };
}
