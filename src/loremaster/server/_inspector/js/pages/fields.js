// The context's fields as a tree (data, metadata, permissions, policy, ...), kept live.

import { contextPath, get } from "../api.js";
import { fill, h } from "../dom.js";
import { jsonView } from "../json.js";
import { live } from "../live.js";

const HIDDEN = new Set(["messages"]);

export async function show(body, ctx) {
  const { id } = ctx;
  const tree = h("div", { class: "fields" });
  fill(body, tree);
  let revision = 0;
  const load = async () => {
    const context = await get(contextPath(id), { include_messages: false });
    revision = context.revision;
    const shown = Object.fromEntries(Object.entries(context).filter(([key]) => !HIDDEN.has(key)));
    fill(tree, jsonView(shown, { open: 2 }));
  };
  await load();
  return live.follow(id, revision, (event) => {
    if (event.revision > revision && (event.branch ?? "main") === "main") load();
  });
}
