// "As sent": the conversation as Anthropic, OpenAI and Gemini each receive it, side by
// side, with every change the translation made listed and marked on the payload.

import { contextPath, get } from "../api.js";
import { windowBar } from "../charts.js";
import { badge, failure, fill, h, loading } from "../dom.js";
import { jsonView } from "../json.js";
import { live } from "../live.js";
import { defaultModel, modelSelect, PROVIDER_NAMES, PROVIDERS } from "../models.js";
import { go } from "../router.js";

/** The report's changes, coloured by what they did (converted, moved, dropped, …). */
export function changeList(changes, warnings = [], onHover = null) {
  if (!changes.length && !warnings.length) {
    return h("p", { class: "lossless" }, "Lossless: nothing converted, moved or dropped.");
  }
  return h(
    "ol",
    { class: "changes" },
    warnings.map((warning) => h("li", { class: "change", dataset: { action: "warning" } }, badge("warning"), " ", warning)),
    changes.map((change, index) =>
      h(
        "li",
        {
          class: "change",
          tabindex: onHover ? "0" : null,
          dataset: { action: change.action, index },
          title: change.meaning,
          onMouseenter: onHover && (() => onHover(index, true)),
          onMouseleave: onHover && (() => onHover(index, false)),
          onFocus: onHover && (() => onHover(index, true)),
          onBlur: onHover && (() => onHover(index, false)),
        },
        badge(change.action),
        change.lossless ? null : badge("lossy", "warning"),
        " ",
        h("code", {}, change.code),
        h("span", { class: "muted" }, ` at message ${change.path || "(added)"}`),
        h("div", { class: "detail" }, change.detail),
      ),
    ),
  );
}

async function column(id, provider, model, branch, onModel) {
  const slot = h("div", { class: "payload-slot" }, loading("Translating…", "12rem"));
  const element = h(
    "section",
    { class: "provider-column", dataset: { provider }, "aria-label": `As sent to ${PROVIDER_NAMES[provider]}` },
    h("header", {}, h("h2", {}, PROVIDER_NAMES[provider]), await modelSelect(model, onModel, { provider })),
    slot,
  );
  const sent = await get(contextPath(id, "/as-sent"), { provider, model, branch }).catch((error) => error);
  if (sent instanceof Error) {
    fill(slot, failure(sent));
    return element;
  }
  const marks = new Map();
  sent.entries.forEach((entry) => {
    if (!entry.changes.length) return;
    const actions = [...new Set(entry.changes.map((i) => sent.report.changes[i].action))];
    marks.set(entry.pointer, { kind: actions.length === 1 ? actions[0] : "several", title: entry.changes.map((i) => sent.report.changes[i].code).join(", ") });
  });
  const payload = jsonView(sent.payload, { marks, open: 2 });
  const pointerOfChange = new Map();
  sent.entries.forEach((entry) => entry.changes.forEach((i) => pointerOfChange.set(i, entry.pointer)));
  const hover = (index, on) => {
    const pointer = pointerOfChange.get(index);
    const node = pointer && payload.querySelector(`[data-pointer="${CSS.escape(pointer)}"]`);
    if (!node) return;
    node.classList.toggle("j-focus", on);
    if (on) node.scrollIntoView({ block: "nearest" });
  };
  fill(
    slot,
    windowBar({ total: sent.tokens, context_window: sent.context_window, max_output: 0, model: sent.model }),
    sent.removed_to_fit ? h("p", { class: "error-text" }, `${sent.removed_to_fit} oldest messages left out to fit the window.`) : null,
    h("h3", {}, `Changes (${sent.report.changes.length})`, sent.report.lossless ? badge("lossless") : badge("lossy", "warning")),
    changeList(sent.report.changes, sent.report.warnings, hover),
    h("h3", {}, "Payload"),
    h("div", { class: "payload" }, payload),
  );
  return element;
}

export async function show(body, ctx) {
  const { id, route } = ctx;
  const query = route.query;
  const branch = query.branch || "main";
  const chosen = {};
  for (const provider of PROVIDERS) chosen[provider] = query[provider] || (await defaultModel(provider));
  const grid = h("div", { class: "as-sent" });
  const intro = h(
    "p",
    { class: "muted" },
    `Branch ${branch}, as each provider's request body receives it (the export route's payload), fitted to the model's window. `,
    "Hover a change to find it in the payload.",
  );
  fill(body, intro, grid);
  let revision = ctx.context.revision;
  const render = async () => {
    const columns = await Promise.all(
      PROVIDERS.map((provider) =>
        column(id, provider, chosen[provider], branch, (model) => go(route.path, { ...query, [provider]: model }, { replace: true })),
      ),
    );
    fill(grid, columns);
  };
  grid.append(...PROVIDERS.map(() => loading("Translating…", "20rem")));
  await render();
  const stop = live.follow(id, revision, (event) => {
    if (event.revision <= revision || (event.branch ?? "main") !== branch) return;
    revision = event.revision;
    if (event.changes.some((change) => String(change.path).startsWith("/messages")) || event.op === "snapshot") {
      render();
    }
  });
  return stop;
}
