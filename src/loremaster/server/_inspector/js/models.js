// The models translation knows (GET /v1/models), as pickers grouped by provider.

import { get } from "./api.js";
import { h } from "./dom.js";

export const PROVIDERS = ["anthropic", "openai", "google"];
export const PROVIDER_NAMES = { anthropic: "Anthropic", openai: "OpenAI", google: "Gemini" };
const CHOSEN_KEY = "loremaster.model";

let known = null;

export function models() {
  known ??= get("/v1/models").catch((error) => {
    known = null;
    throw error;
  });
  return known;
}

/** The provider of a model name (null when not known). */
export async function providerOf(name) {
  const { models: all } = await models();
  return all.find((model) => model.name === name)?.provider ?? null;
}

/** The model to show when none is asked for: the last one chosen, else the provider's. */
export async function defaultModel(provider) {
  const { defaults, models: all } = await models();
  const saved = localStorage.getItem(CHOSEN_KEY);
  if (!provider && saved && all.some((model) => model.name === saved)) return saved;
  const first = all.find((model) => model.provider === (provider ?? "anthropic"));
  return first?.name ?? defaults[provider ?? "anthropic"];
}

export function remember(name) {
  localStorage.setItem(CHOSEN_KEY, name);
}

/** A <select> of models (of one provider, or all grouped), calling onChange(name). */
export async function modelSelect(current, onChange, { provider = null, label = "Model" } = {}) {
  const { models: all } = await models();
  const groups = PROVIDERS.filter((p) => !provider || p === provider).map((p) =>
    h(
      "optgroup",
      { label: PROVIDER_NAMES[p] },
      all.filter((model) => model.provider === p).map((model) => h("option", { value: model.name, selected: model.name === current }, model.name)),
    ),
  );
  const select = h("select", { name: "model", onChange: (event) => onChange(event.target.value) }, groups);
  return h("label", { class: "field" }, h("span", {}, label), select);
}
