// The conversation: every message with its parts and its tokens for a chosen model, the
// whole against that model's window, the recorded provider calls, live appends, and
// migration to another provider (previewed first).

import { contextPath, get, post } from "../api.js";
import { windowBar } from "../charts.js";
import { confirmDialog, toast } from "../dialog.js";
import { badge, failure, fill, format, h, loading } from "../dom.js";
import { live } from "../live.js";
import { defaultModel, modelSelect, models, PROVIDER_NAMES, PROVIDERS, providerOf, remember } from "../models.js";
import { messageCard } from "../parts.js";
import { go } from "../router.js";
import { changeList } from "./sent.js";

const PAGE = 100;

async function branchSelect(id, branch, onChange) {
  const branches = await get(contextPath(id, "/branches"));
  return h(
    "label",
    { class: "field" },
    h("span", {}, "Branch"),
    h(
      "select",
      { name: "branch", onChange: (event) => onChange(event.target.value) },
      branches.map((b) => h("option", { value: b.name, selected: b.name === branch }, `${b.name} (${b.message_count})`)),
    ),
  );
}

/** What the recorded calls cost, per provider. */
function callSummary(messages) {
  const totals = new Map();
  for (const message of messages) {
    const call = message.metadata?.call;
    if (!call) continue;
    const total = totals.get(call.provider) ?? { calls: 0, input: 0, output: 0, cost: 0, latency: 0, priced: false };
    total.calls += 1;
    total.input += call.usage?.input_tokens ?? 0;
    total.output += call.usage?.output_tokens ?? 0;
    total.latency += call.latency_ms ?? 0;
    if (typeof call.cost_usd === "number") {
      total.cost += call.cost_usd;
      total.priced = true;
    }
    totals.set(call.provider, total);
  }
  if (!totals.size) return null;
  return h(
    "div",
    { class: "call-summary", "aria-label": "Recorded provider calls" },
    h("strong", {}, "Recorded calls"),
    [...totals].map(([provider, t]) =>
      h(
        "span",
        { class: "figure" },
        badge(provider ?? "call", provider ?? "call"),
        ` ${t.calls} call${t.calls > 1 ? "s" : ""} · ${format.int(t.input)} in / ${format.int(t.output)} out · ${format.ms(t.latency / t.calls)} avg`,
        t.priced ? ` · ${format.usd(t.cost)}` : "",
      ),
    ),
  );
}

class Conversation {
  constructor(body, ctx) {
    this.body = body;
    this.id = ctx.id;
    this.context = ctx.context;
    this.route = ctx.route;
    this.branch = ctx.route.query.branch || "main";
    this.messages = [];
    this.tokens = new Map();
    this.revision = 0;
    this.more = null;
    this.list = h("div", { class: "messages", "aria-live": "polite" });
    this.window = h("div", { class: "window-slot" }, loading("Counting tokens…", "3.2rem"));
    this.summary = h("div", { class: "summary-slot" });
    this.earlier = h("div", { class: "earlier" });
  }

  async start() {
    const query = this.route.query;
    await this.fetch();
    this.model = query.model || (await this.modelOfCalls()) || (await defaultModel(this.context.primary_provider));
    const toolbar = h(
      "div",
      { class: "toolbar" },
      await branchSelect(this.id, this.branch, (branch) => go(this.route.path, { ...query, branch })),
      await modelSelect(this.model, (model) => {
        remember(model);
        go(this.route.path, { ...query, model }, { replace: true });
      }),
      h("span", { class: "spacer" }),
      h("button", { type: "button", onClick: () => this.migrate() }, "Migrate…"),
    );
    fill(this.body, toolbar, this.window, this.summary, this.earlier, this.list);
    await this.show();
    this.stop = live.follow(this.id, this.revision, (event) => this.changed(event));
    const seq = Number(query.seq);
    if (seq) this.list.querySelector(`#m-${seq}`)?.scrollIntoView({ block: "center" });
  }

  /** The model of the latest recorded call, when the registry knows it. */
  async modelOfCalls() {
    const called = this.messages.findLast((m) => m.metadata?.call?.model)?.metadata.call.model;
    return called && (await providerOf(called)) ? called : null;
  }

  async fetch() {
    const context = await get(contextPath(this.id), { include_messages: false, branch: this.branch });
    const page = await get(contextPath(this.id, "/messages"), { limit: PAGE, branch: this.branch });
    this.revision = context.revision;
    this.messages = page.items;
    this.more = page.next_before_seq;
  }

  async show() {
    fill(this.list, this.messages.map((m) => messageCard(m)));
    if (!this.messages.length) this.list.append(h("p", { class: "muted" }, "No messages yet."));
    this.showEarlier();
    await this.count();
  }

  async load() {
    await this.fetch();
    await this.show();
  }

  showEarlier() {
    fill(
      this.earlier,
      this.more ? h("button", { type: "button", class: "ghost", onClick: () => this.loadEarlier() }, "Load earlier messages") : null,
    );
  }

  async loadEarlier() {
    const page = await get(contextPath(this.id, "/messages"), { limit: PAGE, before_seq: this.more, branch: this.branch });
    const height = document.documentElement.scrollHeight;
    this.messages = [...page.items, ...this.messages];
    this.more = page.next_before_seq;
    this.list.prepend(...page.items.map((m) => messageCard(m, this.tokens.get(m.id))));
    window.scrollBy(0, document.documentElement.scrollHeight - height); // the reader's place stays
    this.showEarlier();
  }

  async count() {
    const provider = (await providerOf(this.model)) ?? "anthropic";
    try {
      const counted = await get(contextPath(this.id, "/tokens"), { provider, model: this.model, branch: this.branch });
      this.tokens = new Map(counted.messages.map((m) => [m.id, m.tokens]));
      fill(this.window, windowBar(counted));
      for (const card of this.list.querySelectorAll(".message")) {
        const tokens = this.tokens.get(card.dataset.id);
        card.querySelector(".tokens").textContent = tokens === undefined ? "" : `${format.int(tokens)} tok`;
      }
    } catch (error) {
      fill(this.window, failure(error));
    }
    fill(this.summary, callSummary(this.messages));
  }

  async changed(event) {
    if (event.revision <= this.revision || (event.branch ?? "main") !== this.branch) return;
    this.revision = event.revision;
    const touchesMessages = event.changes.some((change) => String(change.path).startsWith("/messages"));
    if (event.op === "append_messages") {
      const last = this.messages.at(-1)?.seq ?? 0;
      const page = await get(contextPath(this.id, "/messages"), { limit: PAGE, branch: this.branch });
      const added = page.items.filter((m) => (m.seq ?? 0) > last);
      this.list.querySelector(":scope > p.muted")?.remove();
      this.messages.push(...added);
      this.list.append(...added.map((m) => messageCard(m)));
      await this.count();
    } else if (touchesMessages || event.op === "snapshot") {
      await this.load();
    }
  }

  async migrate() {
    const current = (await providerOf(this.model)) ?? "anthropic";
    const target = PROVIDERS.find((p) => p !== (this.context.primary_provider ?? current)) ?? "openai";
    const { defaults } = await models();
    const preview = h("div", { class: "preview" });
    const providerPick = h(
      "select",
      { name: "to_provider" },
      PROVIDERS.map((p) => h("option", { value: p, selected: p === target }, PROVIDER_NAMES[p])),
    );
    const modelInput = h("input", { name: "model", value: defaults[target] ?? "", "aria-label": "Target model", list: "known-models" });
    const update = async () => {
      fill(preview, loading("Translating…", "4rem"));
      try {
        const sent = await get(contextPath(this.id, "/as-sent"), {
          provider: providerPick.value,
          model: modelInput.value || null,
          branch: this.branch,
        });
        fill(
          preview,
          h("p", {}, `${format.int(sent.tokens)} tokens for ${sent.model}; ${sent.report.lossless ? "nothing is lost" : "some details cannot be kept"}.`),
          changeList(sent.report.changes, sent.report.warnings),
          h("p", { class: "muted" }, "A version is recorded before and after, so the migration can be rolled back."),
        );
      } catch (error) {
        fill(preview, failure(error));
      }
    };
    providerPick.addEventListener("change", () => {
      modelInput.value = defaults[providerPick.value] ?? "";
      update();
    });
    modelInput.addEventListener("change", update);
    const { models: all } = await models();
    const body = h(
      "div",
      {},
      h("p", {}, `Convert the messages of branch ${this.branch} to another provider's format, in one change.`),
      h("div", { class: "toolbar" }, h("label", { class: "field" }, h("span", {}, "To"), providerPick), h("label", { class: "field grow" }, h("span", {}, "Model"), modelInput)),
      h("datalist", { id: "known-models" }, all.map((m) => h("option", { value: m.name }))),
      preview,
    );
    update();
    const values = await confirmDialog({ title: "Migrate to another provider", body, confirm: "Migrate", id: "migrate" });
    if (!values) return;
    try {
      const model = values.get("model");
      const result = await post(contextPath(this.id, "/migrate"), {
        to_provider: values.get("to_provider"),
        options: model ? { model } : {},
        branch: this.branch,
      });
      toast(result.migrated ? `Migrated to ${result.to_provider}: ${result.changes.length} changes` : `Not migrated: ${result.reason}`, result.migrated ? "info" : "error");
    } catch (error) {
      toast(error.message, "error");
    }
  }
}

export async function show(body, ctx) {
  const view = new Conversation(body, ctx);
  await view.start();
  return () => view.stop?.();
}
