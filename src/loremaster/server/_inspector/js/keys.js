// The keyboard: j/k (or the arrows) move through a list's rows, Enter opens one, digits
// pick a tab, g c / g s go to the contexts or the stats, / searches, ? shows this.

import { h } from "./dom.js";

const SHORTCUTS = [
  ["j / ↓", "next row"],
  ["k / ↑", "previous row"],
  ["Enter", "open the row"],
  ["/", "search"],
  ["1 – 4", "switch tab on a context"],
  ["[ / ]", "previous / next page"],
  ["g c", "contexts"],
  ["g s", "health and stats"],
  ["Esc", "close a dialog"],
  ["?", "this help"],
];

/** Handle a key press meant for the page's list or tabs (rows carry data-row). */
export function listKeys(event, main) {
  const rows = [...main.querySelectorAll("[data-row]")];
  const at = rows.indexOf(document.activeElement);
  const move = { j: 1, ArrowDown: 1, k: -1, ArrowUp: -1 }[event.key];
  if (move && rows.length) {
    event.preventDefault();
    const next = at < 0 ? (move > 0 ? 0 : rows.length - 1) : Math.max(0, Math.min(rows.length - 1, at + move));
    rows[next].focus();
    rows[next].scrollIntoView({ block: "nearest" });
    return;
  }
  if (/^[1-9]$/.test(event.key)) {
    const tab = main.querySelectorAll("[role=tab]")[Number(event.key) - 1];
    if (tab) {
      event.preventDefault();
      tab.click();
      tab.focus();
    }
    return;
  }
  const pager = { "[": "[data-page=previous]", "]": "[data-page=next]" }[event.key];
  const button = pager && main.querySelector(pager);
  if (button && !button.disabled) button.click();
}

export function keyboardHelp() {
  if (document.getElementById("shortcuts")) return;
  const rows = SHORTCUTS.map(([keys, what]) => h("tr", {}, h("th", {}, h("kbd", {}, keys)), h("td", {}, what)));
  const dialog = h(
    "dialog",
    { class: "dialog", id: "shortcuts", "aria-labelledby": "shortcuts-title" },
    h("h2", { id: "shortcuts-title" }, "Keyboard"),
    h("table", { class: "shortcuts" }, h("tbody", {}, rows)),
    h("form", { method: "dialog", class: "actions" }, h("button", { class: "primary" }, "Close")),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
