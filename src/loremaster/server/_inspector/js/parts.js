// A message as a card: its role, every part kind rendered (text, image, document, tool
// call with its arguments, tool result, thinking collapsed), its token count and the
// provider call that produced it, when one was recorded.

import { ago, badge, format, h } from "./dom.js";
import { jsonView } from "./json.js";

function mediaSource(part) {
  return part.url ?? `data:${part.media_type};base64,${part.data}`;
}

function providerData(part) {
  const providers = Object.keys(part.provider_data ?? {});
  if (!providers.length) return null;
  return h(
    "details",
    { class: "provider-data" },
    h("summary", {}, `provider data: ${providers.join(", ")}`),
    jsonView(part.provider_data, { open: 1 }),
  );
}

const renderers = {
  text: (part) => h("div", { class: "text" }, part.text),
  image: (part) =>
    h(
      "figure",
      { class: "image" },
      h("img", { src: mediaSource(part), alt: "image in the message", loading: "lazy" }),
      h("figcaption", {}, part.url ? part.url : `${part.media_type}, ${format.bytes(Math.floor((part.data.length * 3) / 4))}`, part.detail ? ` · detail ${part.detail}` : ""),
    ),
  document: (part) =>
    h(
      "div",
      { class: "document" },
      h("span", { class: "doc-icon", "aria-hidden": "true" }, (part.media_type ?? "doc").split("/").pop().slice(0, 4).toUpperCase()),
      h(
        "a",
        { href: mediaSource(part), target: "_blank", rel: "noopener", download: part.url ? null : part.title ?? "document" },
        part.title ?? "document",
      ),
      h("span", { class: "muted" }, ` ${part.media_type ?? part.url ?? ""}`),
    ),
  tool_call: (part) =>
    h(
      "div",
      { class: "tool-call" },
      h("div", { class: "tool-head" }, badge("tool call", "tool"), h("code", { class: "tool-name" }, part.name), h("span", { class: "muted" }, ` id ${part.id}`)),
      jsonView(part.arguments, { open: 3 }),
    ),
  tool_result: (part) =>
    h(
      "div",
      { class: ["tool-result", part.is_error && "is-error"] },
      h("div", { class: "tool-head" }, badge(part.is_error ? "tool error" : "tool result", part.is_error ? "error" : "tool"), h("span", { class: "muted" }, ` for ${part.call_id}`)),
      part.content.map((inner) => renderPart(inner)),
    ),
  thinking: (part) =>
    h(
      "details",
      { class: "thinking" },
      h("summary", {}, part.redacted ? "thinking (redacted)" : "thinking", part.signature ? h("span", { class: "muted" }, " · signed") : null),
      h("div", { class: "text" }, part.redacted ? "The provider sent this reasoning encrypted." : part.text),
    ),
};

export function renderPart(part) {
  const render = renderers[part.kind];
  const body = render ? render(part) : h("div", { class: "unknown" }, jsonView(part));
  return h("div", { class: "part", dataset: { kind: part.kind } }, body, providerData(part));
}

/** A recorded provider call (metadata.call): provider, model, usage, latency, cost. */
export function callStrip(call) {
  const usage = call.usage ?? {};
  const model = call.response_model && call.response_model !== call.model ? `${call.model} → ${call.response_model}` : call.model;
  const figures = [
    ["in", format.int(usage.input_tokens)],
    ["out", format.int(usage.output_tokens)],
    usage.cache_read_tokens !== undefined ? ["cache read", format.int(usage.cache_read_tokens)] : null,
    usage.reasoning_tokens !== undefined ? ["reasoning", format.int(usage.reasoning_tokens)] : null,
    ["latency", format.ms(call.latency_ms)],
    call.ttft_ms !== undefined ? ["first token", format.ms(call.ttft_ms)] : null,
    call.cost_usd !== undefined && call.cost_usd !== null ? ["cost", format.usd(call.cost_usd)] : null,
  ].filter(Boolean);
  return h(
    "div",
    { class: ["call", call.error && "is-error"], "aria-label": "recorded provider call" },
    badge(call.provider ?? "call", call.provider ?? "call"),
    h("code", {}, model ?? ""),
    figures.map(([label, value]) => h("span", { class: "figure" }, h("small", {}, label), " ", value)),
    call.finish_reason ? h("span", { class: "muted" }, call.finish_reason) : null,
    call.partial ? badge("partial", "warning") : null,
    call.error ? h("span", { class: "error-text" }, typeof call.error === "string" ? call.error : JSON.stringify(call.error)) : null,
    call.fallbacks?.length ? badge(`${call.fallbacks.length} fallback${call.fallbacks.length > 1 ? "s" : ""}`, "warning") : null,
    h("details", { class: "call-all" }, h("summary", {}, "all fields"), jsonView(call, { open: 1 })),
  );
}

/** A message card; `tokens` is its count for the chosen model (or undefined). */
export function messageCard(message, tokens) {
  const call = message.metadata?.call;
  return h(
    "article",
    { class: "message", dataset: { role: message.role, seq: message.seq ?? "", id: message.id }, id: `m-${message.seq ?? message.id}` },
    h(
      "header",
      {},
      badge(message.role),
      message.name ? h("strong", { class: "name" }, message.name) : null,
      h("span", { class: "muted seq" }, message.seq ? `#${message.seq}` : ""),
      h("span", { class: "spacer" }),
      h("span", { class: "tokens", title: "tokens for the chosen model" }, tokens === undefined ? "" : `${format.int(tokens)} tok`),
      ago(message.created_at),
    ),
    message.parts.map(renderPart),
    call ? callStrip(call) : null,
  );
}
