// Asking before anything changes: a modal that shows what will happen and resolves true
// only when the user confirms.

import { h } from "./dom.js";

/**
 * confirmDialog({title, body, confirm, danger, fields}) -> Promise<FormData|null>: the
 * form's values when confirmed, null when cancelled. `body` may be a node, or a promise
 * of one (shown once it arrives: the preview of what will change).
 */
export function confirmDialog({ title, body, confirm = "Confirm", danger = false, id = "confirm" }) {
  return new Promise((resolve) => {
    const content = h("div", { class: "dialog-body" });
    const button = h("button", { class: danger ? "danger" : "primary", value: "confirm", type: "submit" }, confirm);
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", { id: `${id}-title` }, title),
      content,
      h(
        "div",
        { class: "actions" },
        h("button", { value: "cancel", type: "submit", formnovalidate: true }, "Cancel"),
        button,
      ),
    );
    const dialog = h("dialog", { class: "dialog wide", id, "aria-labelledby": `${id}-title` }, form);
    let values = null;
    form.addEventListener("submit", (event) => {
      if (event.submitter?.value === "confirm") values = new FormData(form);
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(values);
    });
    Promise.resolve(body).then(
      (node) => content.append(node),
      (error) => {
        content.append(h("div", { class: "failure" }, error.message));
        button.disabled = true;
      },
    );
    document.body.append(dialog);
    dialog.showModal();
    button.focus();
  });
}

/** A short-lived message in the corner (not in the layout: nothing moves). */
export function toast(text, kind = "info") {
  let stack = document.getElementById("toasts");
  if (!stack) {
    stack = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(stack);
  }
  const item = h("div", { class: "toast", dataset: { kind } }, text);
  stack.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}
