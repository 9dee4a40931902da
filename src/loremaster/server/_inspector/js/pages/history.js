// History: the version timeline per branch (forks and merges), a version as it was, a
// side-by-side diff between any two versions or branches, and rollback, branch-from-here
// and merge, each previewed in a confirmation before anything changes.

import { ApiError, contextPath, get, post } from "../api.js";
import { confirmDialog, toast } from "../dialog.js";
import { ago, badge, fill, format, h, loading } from "../dom.js";
import { lanesOf, ROW, timeline } from "../graph.js";
import { differences, jsonView } from "../json.js";
import { live } from "../live.js";
import { messageCard } from "../parts.js";
import { contextHref, go } from "../router.js";

const PAGE = 100;
const FIELDS_HIDDEN = new Set(["messages", "revision", "last_modified", "last_accessed"]);

const fieldsOf = (context) => Object.fromEntries(Object.entries(context).filter(([key]) => !FIELDS_HIDDEN.has(key)));

/** "branch:<name>" names a branch's head; anything else is a version id. */
async function resolve(id, ref, branches) {
  if (!ref?.startsWith("branch:")) return ref;
  const name = ref.slice("branch:".length);
  const branch = (branches ?? (await get(contextPath(id, "/branches")))).find((b) => b.name === name);
  if (!branch?.head_version_id) throw new ApiError(404, "branch_not_found", `branch ${name} has no version yet`);
  return branch.head_version_id;
}

function opSummary(operation) {
  const value = (v) => (v === undefined ? "" : JSON.stringify(v).slice(0, 80));
  const text = {
    add: `+ ${operation.path} = ${value(operation.value)}`,
    remove: `− ${operation.path}`,
    replace: `~ ${operation.path} = ${value(operation.value)}`,
    move: `→ ${operation.from} to ${operation.path}`,
    copy: `⧉ ${operation.from} to ${operation.path}`,
    test: `? ${operation.path}`,
  }[operation.op];
  return h("li", { class: "op", dataset: { op: operation.op } }, h("code", {}, text ?? JSON.stringify(operation)));
}

/** What a diff says will change: its field operations and the messages gained or lost. */
function changeSummary(diff, { empty = "No field changes." } = {}) {
  const fields = diff.patch.filter((op) => !String(op.path).startsWith("/messages"));
  return h(
    "div",
    { class: "change-summary" },
    fields.length ? h("ul", { class: "ops" }, fields.map(opSummary)) : h("p", { class: "muted" }, empty),
    h(
      "p",
      {},
      diff.messages_removed ? h("span", { class: "removed" }, `${diff.messages_removed} message(s) leave the view. `) : null,
      diff.messages_added.length ? h("span", { class: "added" }, `${diff.messages_added.length} message(s) come in.`) : null,
      !diff.messages_removed && !diff.messages_added.length ? h("span", { class: "muted" }, "The messages stay as they are.") : null,
    ),
  );
}

class History {
  constructor(body, ctx) {
    this.body = body;
    this.id = ctx.id;
    this.context = ctx.context;
    this.route = ctx.route;
    this.versions = [];
    this.branches = [];
    this.before = null;
    this.revision = ctx.context.revision;
  }

  async load() {
    const [page, branches] = await Promise.all([
      get(contextPath(this.id, "/versions"), { limit: PAGE }),
      get(contextPath(this.id, "/branches")),
    ]);
    this.versions = page.items;
    this.before = page.next_before;
    this.branches = branches;
  }

  async older() {
    const page = await get(contextPath(this.id, "/versions"), { limit: PAGE, before: this.before });
    this.versions.push(...page.items);
    this.before = page.next_before;
    this.render();
  }

  render() {
    const lanes = lanesOf(this.versions, this.branches);
    const rows = this.versions.map((version) => this.versionRow(version, lanes));
    const compare = this.comparePicker();
    fill(
      this.body,
      h("div", { class: "history-top" }, this.branchList(lanes), compare),
      h(
        "div",
        { class: "timeline-wrap" },
        this.versions.length ? timeline(this.versions, lanes) : null,
        h("div", { class: "version-rows", role: "list", style: { "--row": `${ROW}px` } }, rows.length ? rows : h("p", { class: "muted" }, "No versions yet.")),
      ),
      this.before ? h("button", { type: "button", class: "ghost", onClick: () => this.older() }, "Older versions") : null,
    );
  }

  branchList(lanes) {
    return h(
      "div",
      { class: "branches" },
      h("h2", {}, "Branches"),
      h(
        "ul",
        {},
        this.branches.map((branch) =>
          h(
            "li",
            { dataset: { branch: branch.name } },
            h("span", { class: "lane-dot", "data-lane": (lanes.get(branch.name) ?? 0) % 6 }),
            h("strong", {}, branch.name),
            h("span", { class: "muted" }, ` ${branch.message_count} messages · ${format.ago(branch.last_modified)}`),
            branch.name === "main" ? null : h("button", { type: "button", class: "small", onClick: () => this.merge(branch) }, "Merge…"),
          ),
        ),
      ),
    );
  }

  comparePicker() {
    const options = (selected) => [
      h("optgroup", { label: "Branches" }, this.branches.map((b) => h("option", { value: `branch:${b.name}`, selected: selected === `branch:${b.name}` }, `${b.name} (head)`))),
      h("optgroup", { label: "Versions" }, this.versions.map((v) => h("option", { value: v.version_id }, `#${v.number} ${v.branch} ${v.message || ""}`.trim()))),
    ];
    const a = h("select", { name: "a", "aria-label": "From" }, options("branch:main"));
    const b = h("select", { name: "b", "aria-label": "To" }, options(this.branches[1] ? `branch:${this.branches[1].name}` : "branch:main"));
    if (!this.branches[1] && this.versions[1]) b.value = this.versions[0].version_id;
    if (!this.branches[1] && this.versions[1]) a.value = this.versions[1].version_id;
    return h(
      "form",
      {
        class: "compare",
        onSubmit: (event) => {
          event.preventDefault();
          go(`/contexts/${encodeURIComponent(this.id)}/diff`, { a: a.value, b: b.value });
        },
      },
      h("h2", {}, "Compare"),
      h("div", { class: "toolbar" }, h("label", { class: "field" }, h("span", {}, "From"), a), h("label", { class: "field" }, h("span", {}, "To"), b), h("button", { type: "submit", class: "primary" }, "Diff")),
    );
  }

  versionRow(version, lanes) {
    const href = contextHref(this.id, `/versions/${encodeURIComponent(version.version_id)}`);
    return h(
      "div",
      { class: "version-row", role: "listitem", dataset: { version: version.version_id, number: version.number } },
      h(
        "a",
        { href, class: "version-main", "data-row": true },
        h("span", { class: "number" }, `#${version.number}`),
        h("span", { class: "lane-dot", "data-lane": (lanes.get(version.branch) ?? 0) % 6 }),
        h("span", { class: "branch" }, version.branch),
        h("span", { class: "what" }, version.message || (version.automatic ? "(automatic)" : "")),
        version.tags.map((tag) => badge(tag, "tag")),
        version.merged_version_id ? badge("merge") : null,
      ),
      h("span", { class: "muted meta" }, `r${version.revision} · ${version.message_seq} msgs · `, ago(version.created_at)),
      h(
        "span",
        { class: "actions" },
        h("button", { type: "button", class: "small", onClick: () => this.rollback(version), title: `Roll ${version.branch} back to #${version.number}` }, "Roll back"),
        h("button", { type: "button", class: "small", onClick: () => this.branchFrom(version) }, "Branch"),
      ),
    );
  }

  async rollback(version) {
    const preview = (async () => {
      const head = await resolve(this.id, `branch:${version.branch}`, this.branches);
      const diff = await get(contextPath(this.id, "/diff"), { a: head, b: version.version_id });
      return h(
        "div",
        {},
        h("p", {}, `Branch ${version.branch} comes back to version #${version.number} as a new revision; nothing is deleted (the versions after it stay).`),
        changeSummary(diff),
      );
    })();
    const confirmed = await confirmDialog({ title: `Roll back to #${version.number}?`, body: preview, confirm: "Roll back", danger: true, id: "rollback" });
    if (!confirmed) return;
    try {
      await post(contextPath(this.id, "/rollback"), { version_id: version.version_id, branch: version.branch });
      toast(`${version.branch} rolled back to #${version.number}`);
      await this.refresh();
    } catch (error) {
      toast(error.message, "error");
    }
  }

  async branchFrom(version) {
    const name = h("input", { name: "name", required: true, maxlength: 100, pattern: "[^\\s].*", "aria-label": "Branch name", value: `from-${version.number}` });
    const body = h(
      "div",
      {},
      h("p", {}, `A new branch starting at version #${version.number} (${version.branch}, revision ${version.revision}, ${version.message_seq} messages). Nothing is copied; main is not touched.`),
      h("label", { class: "field" }, h("span", {}, "Name"), name),
    );
    const values = await confirmDialog({ title: "Branch from here", body, confirm: "Create branch", id: "branch" });
    if (!values) return;
    try {
      await post(contextPath(this.id, "/branches"), { name: values.get("name"), from_version_id: version.version_id });
      toast(`branch ${values.get("name")} created`);
      await this.refresh();
    } catch (error) {
      toast(error.message, "error");
    }
  }

  async merge(branch, strategy = "fail", conflicts = null) {
    const target = h(
      "select",
      { name: "target", "aria-label": "Into" },
      this.branches.filter((b) => b.name !== branch.name).map((b) => h("option", { value: b.name }, b.name)),
    );
    const preview = (async () => {
      const head = await resolve(this.id, `branch:${branch.name}`, this.branches);
      const base = branch.base_version_id;
      const diff = base ? await get(contextPath(this.id, "/diff"), { a: base, b: head }) : null;
      return h(
        "div",
        {},
        h("label", { class: "field" }, h("span", {}, "Into"), target),
        conflicts
          ? h(
              "div",
              { class: "conflicts-found" },
              h("p", {}, "Both sides changed these paths differently; choose which side wins:"),
              h("ul", { class: "ops" }, conflicts.map((c) => h("li", {}, h("code", {}, c.path), ` source ${JSON.stringify(c.source)} · target ${JSON.stringify(c.target)}`))),
              h(
                "label",
                { class: "field" },
                h("span", {}, "Winner"),
                h("select", { name: "strategy" }, h("option", { value: "source" }, `${branch.name} (source)`), h("option", { value: "target" }, "the target")),
              ),
            )
          : h("p", {}, `What ${branch.name} changed since it forked — this lands on the target (paths both changed differently are conflicts: nothing is written then, and you choose):`),
        diff ? changeSummary(diff, { empty: "No field changes on the branch." }) : h("p", { class: "muted" }, "The branch has no base version."),
      );
    })();
    const values = await confirmDialog({ title: `Merge ${branch.name}`, body: preview, confirm: "Merge", id: "merge" });
    if (!values) return;
    try {
      const result = await post(contextPath(this.id, `/branches/${encodeURIComponent(branch.name)}/merge`), {
        target: values.get("target"),
        strategy: values.get("strategy") ?? strategy,
      });
      toast(`merged ${branch.name} into ${result.target}: ${result.changes.length} field changes, ${result.messages_added} messages`);
      await this.refresh();
    } catch (error) {
      if (error.code === "merge_conflict") return this.merge(branch, "source", error.details.conflicts);
      toast(error.message, "error");
    }
  }

  async refresh() {
    await this.load();
    this.render();
  }
}

async function versionView(body, ctx) {
  const { id, route } = ctx;
  const versionId = route.params.version;
  const [context, history] = await Promise.all([
    get(contextPath(id, `/versions/${encodeURIComponent(versionId)}`)),
    get(contextPath(id, "/versions"), { limit: PAGE }),
  ]);
  const version = history.items.find((v) => v.version_id === versionId);
  const title = version ? `Version #${version.number} on ${version.branch}` : `Version ${format.short(versionId)}`;
  const head = `branch:${version?.branch ?? "main"}`;
  fill(
    body,
    h(
      "div",
      { class: "version-head" },
      h("h2", {}, title),
      version ? h("p", { class: "muted" }, `${version.message || "(no message)"} · revision ${version.revision} · ${version.kind} · ${format.bytes(version.size_bytes)} · `, ago(version.created_at)) : null,
      h(
        "div",
        { class: "toolbar" },
        h("a", { class: "button", href: contextHref(id, "/history") }, "← Timeline"),
        h("a", { class: "button", href: contextHref(id, "/diff", { a: versionId, b: head }) }, `Diff with ${head.slice(7)} now`),
      ),
    ),
    context.messages ? h("div", { class: "messages" }, context.messages.map((m) => messageCard(m))) : null,
    h("h3", {}, "Fields"),
    jsonView(fieldsOf(context), { open: 2 }),
  );
}

const refLabel = (ref, versions) => {
  if (ref.startsWith("branch:")) return `${ref.slice(7)} (head)`;
  const version = versions.find((v) => v.version_id === ref);
  return version ? `#${version.number} on ${version.branch}` : format.short(ref);
};

async function diffView(body, ctx) {
  const { id, route } = ctx;
  const { a = "branch:main", b = "branch:main" } = route.query;
  const branches = await get(contextPath(id, "/branches"));
  const [from, to] = [await resolve(id, a, branches), await resolve(id, b, branches)];
  const [diff, left, right, history] = await Promise.all([
    get(contextPath(id, "/diff"), { a: from, b: to }),
    get(contextPath(id, `/versions/${encodeURIComponent(from)}`)),
    get(contextPath(id, `/versions/${encodeURIComponent(to)}`)),
    get(contextPath(id, "/versions"), { limit: PAGE }),
  ]);
  const [leftMarks, rightMarks] = differences(fieldsOf(left), fieldsOf(right));
  const removed = (left.messages ?? []).slice(left.messages?.length - diff.messages_removed);
  const side = (label, context, marks, messages, kind) =>
    h(
      "section",
      { class: "diff-side", dataset: { side: kind } },
      h("h3", {}, label),
      jsonView(fieldsOf(context), { marks, open: 1 }),
      messages.length
        ? h("div", { class: ["messages", kind === "from" ? "removed" : "added"] }, h("h4", {}, kind === "from" ? `${messages.length} message(s) only here` : `${messages.length} message(s) added`), messages.map((m) => messageCard(m)))
        : null,
    );
  fill(
    body,
    h(
      "div",
      { class: "toolbar" },
      h("a", { class: "button", href: contextHref(id, "/history") }, "← Timeline"),
      h("a", { class: "button", href: contextHref(id, "/diff", { a: b, b: a }) }, "⇄ Swap"),
      h("span", { class: "muted" }, `${diff.patch.length} operation(s)`),
    ),
    changeSummary(diff),
    h(
      "div",
      { class: "diff" },
      side(`From ${refLabel(a, history.items)}`, left, leftMarks, diff.messages_removed ? removed : [], "from"),
      side(`To ${refLabel(b, history.items)}`, right, rightMarks, diff.messages_added, "to"),
    ),
  );
}

export async function show(body, ctx) {
  fill(body, loading("Loading the history…"));
  if (ctx.route.params.version) {
    await versionView(body, ctx);
    return () => {};
  }
  if (ctx.route.params.tab === "diff") {
    await diffView(body, ctx);
    return () => {};
  }
  const view = new History(body, ctx);
  await view.load();
  view.render();
  let timer = null;
  const stop = live.follow(ctx.id, view.revision, (event) => {
    if (event.revision <= view.revision) return;
    view.revision = event.revision;
    clearTimeout(timer); // a burst of changes redraws the timeline once
    timer = setTimeout(() => view.refresh().catch((error) => toast(error.message, "error")), 300);
  });
  return () => {
    clearTimeout(timer);
    stop();
  };
}
