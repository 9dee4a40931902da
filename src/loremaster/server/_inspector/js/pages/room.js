// A room: who sits at the table and who is present, the shared state as an editable tree
// (each edit a merge patch sent with the revision it was made on), the edit lock and its
// time left, and the conflicts waiting for a person, resolved path by path.

import { contextPath, get, post, request, whoAmI } from "../api.js";
import { toast } from "../dialog.js";
import { badge, failure, fill, format, h } from "../dom.js";
import { editableTree, jsonView, pointerOf } from "../json.js";
import { live } from "../live.js";

const PRESENCE_MS = 10000;
const LOCK_SECONDS = 60;
const SIDES = ["base", "current", "incoming"];

/**
 * The merge patch setting the value at `parts` ({a: {b: value}} for [a, b]; null removes
 * it). Merge patches cannot reach into arrays: the first array on the way is sent whole,
 * edited.
 */
export function mergePatch(state, parts, value) {
  let node = state;
  for (let i = 0; i < parts.length; i += 1) {
    if (Array.isArray(node)) {
      const copy = structuredClone(node);
      setIn(copy, parts.slice(i), value);
      return nest(parts.slice(0, i), copy);
    }
    node = node?.[parts[i]];
  }
  return nest(parts, value);
}

function setIn(target, parts, value) {
  let node = target;
  for (const part of parts.slice(0, -1)) node = node[part];
  const last = parts.at(-1);
  if (value !== null) node[last] = value;
  else if (Array.isArray(node)) node.splice(Number(last), 1);
  else delete node[last];
}

function nest(parts, value) {
  return parts.reduceRight((inner, part) => ({ [part]: inner }), value);
}

class Room {
  constructor(body, ctx) {
    this.body = body;
    this.id = ctx.id;
    this.room = null;
    this.revision = 0;
    this.editRevision = null;
    this.dirty = false;
    this.lock = null;
    this.timers = [];
    this.state = h("div", { class: "shared-state" });
    this.conflicts = h("div", { class: "conflicts" });
    this.people = h("ul", { class: "people", "aria-label": "Participants" });
    this.lockBox = h("div", { class: "lock" });
    this.joinButton = h("button", { type: "button", onClick: () => this.toggleSeat() }, "Join");
  }

  async start() {
    this.me = (await whoAmI()).name;
    fill(
      this.body,
      h(
        "div",
        { class: "room" },
        h(
          "div",
          { class: "room-main" },
          h("h2", {}, "Shared state"),
          h("p", { class: "muted hint" }, "Click a value to edit it (Enter saves, Esc cancels). Each edit is a merge patch made on the revision it started from."),
          this.state,
          h("h2", {}, "Conflicts"),
          this.conflicts,
        ),
        h(
          "aside",
          { class: "room-side" },
          h("h2", {}, "At the table"),
          this.people,
          this.joinButton,
          h("h2", {}, "Edit lock"),
          this.lockBox,
        ),
      ),
    );
    await Promise.all([this.load(), this.loadLock(), this.loadConflicts(), this.loadPresence()]);
    this.stop = live.follow(this.id, this.revision, (event) => this.changed(event));
    const onPresence = ({ detail }) => detail.context_id === this.id && this.showPresence(detail.members);
    live.addEventListener("presence", onPresence);
    this.stopPresence = () => live.removeEventListener("presence", onPresence);
    this.heartbeat();
    this.timers.push(setInterval(() => this.heartbeat(), PRESENCE_MS));
    this.timers.push(setInterval(() => this.loadPresence(), PRESENCE_MS / 2));
    this.timers.push(setInterval(() => this.showLock(), 1000));
  }

  cleanup() {
    this.stop?.();
    this.stopPresence?.();
    for (const timer of this.timers) clearInterval(timer);
  }

  async load() {
    const room = await get(contextPath(this.id), { include_messages: false });
    this.room = room;
    this.revision = room.revision;
    this.renderState();
    this.renderPeople();
  }

  editing() {
    const active = document.activeElement;
    return active instanceof HTMLInputElement && this.state.contains(active);
  }

  renderState() {
    if (this.editing()) {
      this.dirty = true; // shown once the edit in progress ends
      return;
    }
    this.dirty = false;
    this.editRevision = null;
    fill(
      this.state,
      editableTree(this.room.shared_state, {
        onStart: () => {
          this.editRevision ??= this.revision;
        },
        onSet: (parts, value) => this.send(mergePatch(this.room.shared_state, parts, value), parts),
        onRemove: (parts) => this.send(mergePatch(this.room.shared_state, parts, null), parts),
      }),
      h("p", { class: "muted rev-line" }, `revision ${this.revision}`),
    );
    this.state.addEventListener("focusout", () => setTimeout(() => this.dirty && !this.editing() && this.renderState()), { once: true });
  }

  strategy() {
    return this.room.conflict_policy?.strategy ?? "automatic_merge";
  }

  /** Send `{shared_state: patch}` made on the revision the edit started from. */
  async send(patch, parts) {
    const made = this.editRevision ?? this.revision;
    this.editRevision = null;
    const changes = { shared_state: patch };
    try {
      if (live.state === "open") {
        await live.update(this.id, changes, made, this.strategy());
      } else {
        await request(contextPath(this.id), {
          method: "PATCH",
          body: changes,
          query: { strategy: this.strategy() },
          headers: { "If-Match": `"${made}"` },
        });
      }
    } catch (error) {
      toast(`${pointerOf(parts)}: ${error.message}`, "error");
    }
    await this.load();
    await this.loadConflicts();
  }

  async changed(event) {
    if (event.revision <= this.revision || (event.branch ?? "main") !== "main") return;
    const paths = event.changes.map((change) => String(change.path));
    await this.load();
    if (paths.some((path) => path.startsWith("/conflicts")) || event.op === "resolve_conflict") await this.loadConflicts();
    if (paths.some((path) => path.startsWith("/lock"))) await this.loadLock();
  }

  get seated() {
    return (this.room?.active_participants ?? []).includes(this.me);
  }

  renderPeople() {
    const seated = this.room.active_participants ?? [];
    this.showLock();
    this.joinButton.textContent = this.seated ? `Leave the table (${this.me})` : `Join the table as ${this.me}`;
    this.showPresence(this.present ?? []);
    if (!seated.length && !(this.present ?? []).length) fill(this.people, h("li", { class: "muted" }, "Nobody has joined yet."));
  }

  showPresence(entries) {
    this.present = entries;
    const seated = this.room?.active_participants ?? [];
    const here = new Map(entries.map((entry) => [entry.user_id, entry]));
    const names = [...new Set([...seated, ...here.keys()])];
    fill(
      this.people,
      names.map((name) => {
        const entry = here.get(name);
        return h(
          "li",
          { class: ["person", entry && "present"], dataset: { user: name } },
          h("span", { class: "presence-dot", title: entry ? "present" : "away" }),
          h("strong", {}, name),
          seated.includes(name) ? null : h("span", { class: "muted" }, " (watching)"),
          entry?.viewing ? h("span", { class: "muted" }, ` · ${entry.viewing}`) : null,
          entry?.typing ? h("span", { class: "typing" }, " · typing…") : null,
        );
      }),
    );
  }

  async loadPresence() {
    try {
      this.showPresence(await get(contextPath(this.id, "/presence")));
    } catch {
      // presence is best effort: it lapses by itself
    }
  }

  /** Tell the others this tab is here (presence is for those at the table). */
  heartbeat() {
    if (!this.seated) return;
    const typing = this.editing();
    if (live.state === "open") live.presence(this.id, "room", typing);
    else request(contextPath(this.id, "/presence/me"), { method: "PUT", body: { viewing: "room", typing } }).catch(() => {});
  }

  async toggleSeat() {
    try {
      if (this.seated) {
        await request(contextPath(this.id, "/participants/me"), { method: "DELETE" });
      } else {
        await post(contextPath(this.id, "/participants"));
      }
      await this.load();
      this.heartbeat();
    } catch (error) {
      toast(error.message, "error");
    }
  }

  async loadLock() {
    try {
      this.lock = (await get(contextPath(this.id, "/lock"))).lock;
    } catch (error) {
      fill(this.lockBox, failure(error));
      return;
    }
    this.showLock();
  }

  showLock() {
    const lock = this.lock;
    const left = lock ? Math.max(0, Math.round((new Date(lock.expires_at) - Date.now()) / 1000)) : 0;
    if (lock && !left) this.lock = null;
    const held = this.lock
      ? h("p", {}, "Held by ", h("strong", { class: "holder" }, lock.holder), h("span", { class: "time-left" }, ` · ${left}s left`), h("span", { class: "muted" }, ` · token ${lock.token}`))
      : h("p", { class: "muted" }, "Nobody holds the lock: anyone may write.");
    if (!this.seated) {
      fill(this.lockBox, held, h("p", { class: "muted hint" }, "Join the table to take the lock."));
      return;
    }
    const mine = this.lock?.holder === this.me;
    const take = h("button", { type: "button", onClick: () => this.takeLock() }, mine ? "Extend" : `Take it for ${LOCK_SECONDS}s`);
    const release = mine ? h("button", { type: "button", onClick: () => this.releaseLock() }, "Release") : null;
    fill(this.lockBox, held, h("div", { class: "toolbar" }, take, release));
  }

  async takeLock() {
    try {
      this.lock = await post(contextPath(this.id, "/lock"), { timeout: LOCK_SECONDS });
      this.showLock();
    } catch (error) {
      toast(error.message, "error");
    }
  }

  async releaseLock() {
    try {
      await request(contextPath(this.id, "/lock"), { method: "DELETE" });
      await this.loadLock();
    } catch (error) {
      toast(error.message, "error");
    }
  }

  async loadConflicts() {
    let waiting;
    try {
      waiting = await get(contextPath(this.id, "/conflicts"));
    } catch (error) {
      fill(this.conflicts, failure(error));
      return;
    }
    if (!waiting.length) {
      fill(this.conflicts, h("p", { class: "muted" }, "No conflicts waiting."));
      return;
    }
    fill(this.conflicts, waiting.map((conflict) => this.conflictCard(conflict)));
  }

  conflictCard(conflict) {
    const name = `c-${conflict.conflict_id}`;
    const rows = conflict.paths.map((path, index) =>
      h(
        "tr",
        { dataset: { path: path.path } },
        h("th", { scope: "row" }, h("code", {}, path.path)),
        SIDES.map((side) =>
          h(
            "td",
            {},
            h(
              "label",
              { class: "choice" },
              h("input", { type: "radio", name: `${name}-${index}`, value: side, checked: side === "current", dataset: { side } }),
              h("span", { class: "side-name" }, side),
              jsonView(path[side] === undefined ? null : path[side], { open: 1 }),
            ),
          ),
        ),
      ),
    );
    const form = h(
      "form",
      {
        class: "conflict",
        dataset: { conflict: conflict.conflict_id },
        onSubmit: async (event) => {
          event.preventDefault();
          const resolution = {};
          conflict.paths.forEach((path, index) => {
            resolution[path.path] = form.querySelector(`input[name="${name}-${index}"]:checked`).value;
          });
          try {
            await post(contextPath(this.id, `/conflicts/${encodeURIComponent(conflict.conflict_id)}/resolve`), { resolution });
            toast("conflict resolved");
            await this.load();
            await this.loadConflicts();
          } catch (error) {
            toast(error.message, "error");
          }
        },
      },
      h(
        "header",
        {},
        badge(conflict.strategy),
        ` by ${conflict.user_id ?? "someone"} on revision ${conflict.base_revision}, recorded at ${conflict.revision} `,
        conflict.resolver ? h("span", {}, "· offered to ", h("strong", {}, conflict.resolver)) : null,
        h("span", { class: "muted" }, ` · ${format.ago(conflict.created_at)}`),
      ),
      h(
        "table",
        { class: "resolution" },
        h("thead", {}, h("tr", {}, h("th", {}, "Path"), SIDES.map((side) => h("th", {}, side)))),
        h("tbody", {}, rows),
      ),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Resolve")),
    );
    return form;
  }
}

export async function show(body, ctx) {
  const room = new Room(body, ctx);
  await room.start();
  return () => room.cleanup();
}
