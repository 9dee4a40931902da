// Health and statistics: the manager's health check, operation latency percentiles, the
// cache's hit rate, contexts by type and state, and the recorded provider calls' tokens
// and cost per provider. Refreshed every few seconds in place.

import { get } from "../api.js";
import { bars, percentiles, ring } from "../charts.js";
import { badge, failure, fill, format, h } from "../dom.js";

const REFRESH_MS = 5000;

function facts(rows) {
  return h(
    "dl",
    { class: "facts" },
    rows.filter(Boolean).map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]),
  );
}

function healthPanel(health) {
  const storage = health.storage ?? {};
  const bus = health.event_bus ?? {};
  return [
    h("h2", {}, "Health ", badge(health.status, health.status === "ok" ? "ok" : "error")),
    health.reason ? h("p", { class: "error-text" }, health.reason) : null,
    facts([
      ["version", health.version],
      ["backend", storage.backend],
      ["reachable", String(storage.reachable)],
      ["schema", storage.schema_version],
      storage.database_bytes !== undefined ? ["database", format.bytes(storage.database_bytes)] : null,
      ["contexts", format.int(storage.contexts)],
      ["messages", format.int(storage.messages)],
      ["events", format.int(storage.events)],
      ["event bus", `${bus.transport ?? "–"}${bus.connected === false ? " (disconnected)" : ""}`],
    ]),
  ];
}

function cachePanel(stats) {
  const cache = stats.cache ?? {};
  return [
    h("h2", {}, "Cache"),
    h(
      "div",
      { class: "cache" },
      ring(cache.hit_rate, "hit rate"),
      facts([
        ["hits", format.int(cache.hits)],
        ["misses", format.int(cache.misses)],
        ["entries", format.int(cache.entries)],
        ["trusted", String(cache.trusted)],
        ["stale serves", format.int(cache.stale_serves)],
        ["translations cached", format.int(stats.translation_cache_entries)],
      ]),
    ),
  ];
}

function operationsTable(operations) {
  return h(
    "table",
    { class: "numbers" },
    h("thead", {}, h("tr", {}, ["operation", "count", "errors", "mean", "p50", "p95", "p99", "max"].map((name) => h("th", { scope: "col" }, name)))),
    h(
      "tbody",
      {},
      operations.map(([name, f]) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, name),
          h("td", {}, format.int(f.count)),
          h("td", {}, format.int(f.errors)),
          [f.mean_ms, f.p50_ms, f.p95_ms, f.p99_ms, f.max_ms].map((ms) => h("td", {}, format.ms(ms))),
        ),
      ),
    ),
  );
}

function storagePanel(storage) {
  if (storage.unavailable) return [h("h2", {}, "Storage"), h("p", { class: "error-text" }, storage.unavailable)];
  const rows = (storage.by_type_and_state ?? []).map((row) => [`${row.context_type} · ${row.state}`, row.contexts, `${format.int(row.contexts)} · ${format.bytes(row.bytes)}`]);
  return [
    h("h2", {}, "Contexts by type and state"),
    bars(rows, { label: "Contexts by type and state" }),
    facts([
      ["contexts", format.int(storage.contexts)],
      ["messages", format.int(storage.messages)],
      ["stored", format.bytes(storage.bytes)],
      ["largest conversation", `${format.int(storage.max_messages)} messages`],
    ]),
  ];
}

function usagePanel(usage) {
  const providers = Object.entries(usage.providers);
  const intro = h("p", { class: "muted" }, `Recorded provider calls in the ${usage.contexts_scanned} most recently changed conversations.`);
  if (!providers.length) return [h("h2", {}, "Tokens and cost per provider"), intro, h("p", { class: "muted" }, "No recorded calls.")];
  return [
    h("h2", {}, "Tokens and cost per provider"),
    intro,
    h("h3", {}, "Tokens (in + out)"),
    bars(
      providers.map(([name, t]) => [name, t.input_tokens + t.output_tokens, `${format.int(t.input_tokens)} in · ${format.int(t.output_tokens)} out`]),
      { label: "Tokens per provider" },
    ),
    h("h3", {}, "Cost"),
    bars(
      providers.map(([name, t]) => [name, t.cost_usd, `${format.usd(t.cost_usd)} · ${t.calls} calls · ${format.ms(t.latency_ms / t.calls)} avg`]),
      { label: "Cost per provider" },
    ),
  ];
}

export async function show(main) {
  const panels = {
    health: h("section", { class: "panel", id: "health" }),
    cache: h("section", { class: "panel", id: "cache" }),
    latency: h("section", { class: "panel wide", id: "latency" }),
    storage: h("section", { class: "panel", id: "storage" }),
    usage: h("section", { class: "panel", id: "usage" }),
  };
  fill(main, h("section", { class: "page stats" }, h("h1", {}, "Health & stats"), h("div", { class: "panels" }, Object.values(panels))));
  const refresh = async () => {
    try {
      const [health, stats, usage] = await Promise.all([get("/v1/health"), get("/v1/stats"), get("/v1/usage")]);
      const operations = Object.entries(stats.operations ?? {});
      const figuresOpen = panels.latency.querySelector("details")?.open ?? false;
      fill(panels.health, healthPanel(health));
      fill(panels.cache, cachePanel(stats));
      fill(
        panels.latency,
        h(
          "h2",
          {},
          "Latency by operation ",
          h("small", { class: "legend" }, h("span", { class: "p50" }, "● p50"), h("span", { class: "p95" }, "● p95"), h("span", { class: "p99" }, "● p99"), h("span", { class: "muted" }, `${stats.backend} · the last 2,048 calls of each`)),
        ),
        percentiles(operations),
        operations.length ? h("details", { open: figuresOpen }, h("summary", {}, "All figures"), operationsTable(operations)) : null,
      );
      fill(panels.storage, storagePanel(stats.storage ?? {}));
      fill(panels.usage, usagePanel(usage));
    } catch (error) {
      fill(panels.health, h("h2", {}, "Health"), failure(error));
    }
  };
  await refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
