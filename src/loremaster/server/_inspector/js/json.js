// JSON as a tree: collapsible, long strings shortened, any node markable by its JSON
// pointer (the "as sent" view marks where the translation changed something), and an
// editable form for the room's shared state.

import { h } from "./dom.js";

const LONG_STRING = 240;

const escapeKey = (key) => String(key).replaceAll("~", "~0").replaceAll("/", "~1");
export const pointerOf = (parts) => parts.map((part) => `/${escapeKey(part)}`).join("");
const partsOf = (pointer) =>
  pointer === "" ? [] : pointer.slice(1).split("/").map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"));

function scalar(value) {
  if (value === null) return h("span", { class: "j-null" }, "null");
  if (typeof value === "string") {
    if (value.length <= LONG_STRING) return h("span", { class: "j-str" }, JSON.stringify(value));
    const shown = h("span", { class: "j-str" }, JSON.stringify(`${value.slice(0, LONG_STRING)}…`));
    const more = h(
      "button",
      {
        type: "button",
        class: "link j-more",
        onClick: () => {
          shown.textContent = JSON.stringify(value);
          more.remove();
        },
      },
      `+${(value.length - LONG_STRING).toLocaleString()} chars`,
    );
    return h("span", {}, shown, " ", more);
  }
  return h("span", { class: `j-${typeof value}` }, JSON.stringify(value));
}

function summary(value) {
  if (Array.isArray(value)) return value.length ? `[ ${value.length} items ]` : "[]";
  const keys = Object.keys(value);
  return keys.length ? `{ ${keys.length} keys }` : "{}";
}

const isContainer = (value) => value !== null && typeof value === "object";

/**
 * A read-only tree of `value`. `marks` maps JSON pointers to {kind, title}: the node at
 * each is highlighted (and opened). `open` is how many levels start expanded.
 */
export function jsonView(value, { marks = new Map(), open = 2 } = {}) {
  const markedPrefixes = new Set();
  for (const pointer of marks.keys()) {
    const parts = partsOf(pointer);
    for (let i = 0; i <= parts.length; i += 1) markedPrefixes.add(pointerOf(parts.slice(0, i)));
  }

  function node(key, item, parts, depth) {
    const pointer = pointerOf(parts);
    const mark = marks.get(pointer);
    const label = key === null ? null : h("span", { class: "j-key" }, Array.isArray(key) ? key[0] : `${JSON.stringify(key)}: `);
    const attrs = {
      class: ["j-node", mark && "j-mark"],
      dataset: { pointer, ...(mark ? { kind: mark.kind } : {}) },
      title: mark?.title,
    };
    if (!isContainer(item) || !Object.keys(item).length) {
      return h("div", attrs, label, isContainer(item) ? h("span", { class: "j-punct" }, summary(item)) : scalar(item));
    }
    const entries = Array.isArray(item) ? item.map((v, i) => [i, v]) : Object.entries(item);
    const details = h(
      "details",
      { open: depth < open || markedPrefixes.has(pointer) },
      h("summary", {}, label, h("span", { class: "j-punct" }, summary(item))),
      h(
        "div",
        { class: "j-body" },
        entries.map(([k, v]) => node(Array.isArray(item) ? [`${k}: `] : k, v, [...parts, k], depth + 1)),
      ),
    );
    return h("div", attrs, details);
  }

  return h("div", { class: "json" }, node(null, value, [], 0));
}

/**
 * Where two documents differ, as marks for `jsonView`: [marks of the first, marks of the
 * second] (a key only one has is removed or added; a value that differs, changed).
 */
export function differences(first, second) {
  const left = new Map();
  const right = new Map();
  const walk = (a, b, parts) => {
    const pointer = pointerOf(parts);
    if (isContainer(a) && isContainer(b) && Array.isArray(a) === Array.isArray(b)) {
      for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (!(key in b)) left.set(pointerOf([...parts, key]), { kind: "removed", title: "only here" });
        else if (!(key in a)) right.set(pointerOf([...parts, key]), { kind: "added", title: "only here" });
        else walk(a[key], b[key], [...parts, key]);
      }
    } else if (JSON.stringify(a) !== JSON.stringify(b)) {
      left.set(pointer, { kind: "changed", title: "differs" });
      right.set(pointer, { kind: "changed", title: "differs" });
    }
  };
  walk(first, second, []);
  return [left, right];
}

/** Read what the user typed: JSON when it is JSON (42, true, null, "x", {...}), else text. */
export function parseTyped(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * An editable tree. `onSet(parts, value)` when a value is edited or a key added,
 * `onRemove(parts)` when a key is removed, `onStart()` when an edit begins (the caller
 * notes the revision it is made on). Each node carries data-pointer.
 */
export function editableTree(value, { onSet, onRemove, onStart }) {
  function editor(parts, current, done) {
    const input = h("input", {
      class: "j-input",
      value: typeof current === "string" ? current : JSON.stringify(current),
      "aria-label": `New value of ${pointerOf(parts) || "/"}`,
    });
    let finished = false;
    const finish = (next) => {
      if (finished) return;
      finished = true;
      done(next);
    };
    const cancel = () => finish(undefined);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        finish(parseTyped(input.value));
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        cancel();
      }
    });
    input.addEventListener("blur", cancel);
    return input;
  }

  function leaf(parts, item) {
    const holder = h("span", { class: "j-leaf" });
    const show = () => {
      holder.replaceChildren(
        h(
          "button",
          {
            type: "button",
            class: "j-edit",
            title: "Edit (Enter saves, Esc cancels)",
            onClick: () => {
              onStart?.();
              const input = editor(parts, item, (next) => {
                if (next === undefined) return show();
                holder.replaceChildren(h("span", { class: "j-pending" }, scalar(next)));
                onSet(parts, next);
              });
              holder.replaceChildren(input);
              input.focus();
              input.select();
            },
          },
          scalar(item),
        ),
      );
    };
    show();
    return holder;
  }

  function adder(parts) {
    const key = h("input", { class: "j-input", placeholder: "key", "aria-label": "New key", size: 10 });
    const val = h("input", { class: "j-input", placeholder: "value", "aria-label": "New value", size: 12 });
    const form = h(
      "form",
      {
        class: "j-add",
        onSubmit: (event) => {
          event.preventDefault();
          if (!key.value.trim()) return key.focus();
          onSet([...parts, key.value.trim()], parseTyped(val.value));
        },
      },
      key,
      val,
      h("button", { type: "submit", class: "small" }, "Add"),
    );
    key.addEventListener("focus", () => onStart?.(), { once: true });
    return form;
  }

  function node(key, item, parts) {
    const pointer = pointerOf(parts);
    const remove =
      key === null
        ? null
        : h("button", { type: "button", class: "j-remove small ghost", title: `Remove ${pointer}`, "aria-label": `Remove ${pointer}`, onClick: () => onRemove(parts) }, "×");
    const label = key === null ? null : h("span", { class: "j-key" }, `${key}: `);
    if (!isContainer(item)) return h("div", { class: "j-node", dataset: { pointer } }, label, leaf(parts, item), remove);
    const entries = Array.isArray(item) ? item.map((v, i) => [i, v]) : Object.entries(item);
    return h(
      "div",
      { class: "j-node", dataset: { pointer } },
      label,
      h("span", { class: "j-punct" }, summary(item)),
      remove,
      h(
        "div",
        { class: "j-body" },
        entries.map(([k, v]) => node(k, v, [...parts, Array.isArray(item) ? Number(k) : k])),
        Array.isArray(item) ? null : adder(parts),
      ),
    );
  }

  return h("div", { class: "json editable" }, node(null, value, []));
}
