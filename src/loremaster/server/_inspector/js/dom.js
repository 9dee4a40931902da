// Building the page: elements from plain calls (text is always text, never HTML), and
// the few formats every page shows.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
}

function assign(element, props) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      element.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (key === "dataset") {
      Object.assign(element.dataset, value);
    } else if (key === "style" && typeof value === "object") {
      for (const [name, v] of Object.entries(value)) element.style.setProperty(name, v);
    } else if (key in element && !(element instanceof SVGElement) && typeof value !== "string") {
      element[key] = value;
    } else {
      element.setAttribute(key, value === true ? "" : value);
    }
  }
}

/** An HTML element: h("a", {href: "#/", class: "x", onClick: fn}, "text", child, ...). */
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  assign(element, props);
  append(element, children);
  return element;
}

/** An SVG element, as `h` makes HTML ones. */
export function s(tag, props, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2).toLowerCase(), value);
    } else {
      element.setAttribute(key, value);
    }
  }
  append(element, children);
  return element;
}

/** Replace what `parent` holds with `children`. */
export function fill(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
  return parent;
}

const integer = new Intl.NumberFormat("en");

export const format = {
  int: (n) => (n === null || n === undefined ? "–" : integer.format(n)),
  ms: (n) => (n === null || n === undefined ? "–" : `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n)} ms`),
  pct: (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(x >= 0.999 || x === 0 ? 0 : 1)}%`),
  usd: (n) => (n === null || n === undefined ? "–" : `$${n < 0.01 ? n.toFixed(5) : n.toFixed(n < 1 ? 4 : 2)}`),
  bytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KB", "MB", "GB"];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
  },
  time(iso) {
    if (!iso) return "–";
    return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  },
  ago(iso, now = Date.now()) {
    if (!iso) return "–";
    const seconds = Math.round((now - new Date(iso).getTime()) / 1000);
    if (seconds < 5) return "just now";
    if (seconds < 60) return `${seconds}s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
    return `${Math.floor(seconds / 86400)}d ago`;
  },
  short: (id) => (id ? String(id).slice(0, 8) : "–"),
};

/** A <time> showing how long ago `iso` was, its full date as a tooltip. */
export function ago(iso) {
  return h("time", { datetime: iso, title: format.time(iso), class: "ago" }, format.ago(iso));
}

/** A badge: a short word in a coloured pill (`kind` picks the colour). */
export function badge(text, kind = text) {
  return h("span", { class: "badge", dataset: { kind: String(kind) } }, text);
}

/** An inline message that something failed, with the server's error code. */
export function failure(error) {
  const code = error?.code ? h("code", {}, error.code) : null;
  return h("div", { class: "failure", role: "alert" }, code, " ", error?.message ?? String(error));
}

/** A placeholder of a given height while something loads (keeps the layout still). */
export function loading(label = "Loading…", height = "6rem") {
  return h("div", { class: "loading", style: { "min-height": height }, "aria-busy": "true" }, label);
}

/** Whether a key press belongs to a field the user is typing in. */
export function typing(event) {
  const target = event.target;
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))
  );
}
