// Small charts drawn as SVG or plain boxes: a context window bar, horizontal bars, a
// latency percentile chart.

import { format, h, s } from "./dom.js";

/** How much of a model's window the conversation takes, and what is kept for the answer. */
export function windowBar({ total, context_window: window, max_output: reserve = 0, model }) {
  const used = Math.min(1, total / window);
  const kept = Math.min(1 - used, reserve / window);
  const over = total + reserve > window;
  return h(
    "div",
    { class: ["window", over && "over"], role: "group", "aria-label": "Context window" },
    h(
      "div",
      {
        class: "window-track",
        role: "meter",
        "aria-valuemin": 0,
        "aria-valuemax": window,
        "aria-valuenow": total,
        "aria-label": `${format.int(total)} of ${format.int(window)} tokens`,
      },
      h("span", { class: "window-used", style: { width: `${used * 100}%` } }),
      h("span", { class: "window-reserve", style: { width: `${kept * 100}%` } }),
    ),
    h(
      "div",
      { class: "window-legend" },
      h("strong", { class: "window-total" }, `${format.int(total)} tokens`),
      ` of ${format.int(window)} (${format.pct(total / window)}) for ${model}`,
      reserve ? h("span", { class: "muted" }, ` · ${format.int(reserve)} kept for the answer`) : null,
      over ? h("span", { class: "error-text" }, " · over the window: sending drops the oldest messages") : null,
    ),
  );
}

/** Horizontal bars: rows of [label, value, text] scaled to the largest value. */
export function bars(rows, { unit = (v) => format.int(v), label = "chart" } = {}) {
  const largest = Math.max(0, ...rows.map(([, value]) => value ?? 0)) || 1;
  return h(
    "div",
    { class: "bars", role: "list", "aria-label": label },
    rows.map(([name, value, text]) =>
      h(
        "div",
        { class: "bar-row", role: "listitem" },
        h("span", { class: "bar-label", title: name }, name),
        h("span", { class: "bar-track" }, h("span", { class: "bar-fill", style: { width: `${((value ?? 0) / largest) * 100}%` } })),
        h("span", { class: "bar-value" }, text ?? unit(value)),
      ),
    ),
  );
}

/**
 * Latency percentiles per operation: for each, a line from p50 to p99 with marks at p50,
 * p95 and p99, on a log scale (they span microseconds to seconds).
 */
export function percentiles(operations) {
  const rows = operations.filter(([, figures]) => figures.p50_ms !== undefined);
  if (!rows.length) return h("p", { class: "muted" }, "No operations measured yet.");
  const lowest = Math.max(0.001, Math.min(...rows.map(([, f]) => f.p50_ms)));
  const highest = Math.max(lowest * 10, ...rows.map(([, f]) => f.p99_ms));
  const [left, width, rowHeight] = [170, 560, 22];
  const x = (ms) => left + (Math.log10(Math.max(ms, lowest) / lowest) / Math.log10(highest / lowest)) * (width - 10);
  const height = rows.length * rowHeight + 24;
  const ticks = [];
  for (let decade = Math.floor(Math.log10(lowest)); 10 ** decade <= highest; decade += 1) {
    if (10 ** decade >= lowest) ticks.push(10 ** decade);
  }
  return s(
    "svg",
    { class: "percentiles", viewBox: `0 0 ${left + width} ${height}`, role: "img", "aria-label": "Latency percentiles per operation (p50, p95, p99)" },
    ticks.map((tick) =>
      s("g", {}, s("line", { x1: x(tick), x2: x(tick), y1: 0, y2: height - 18, class: "grid" }), s("text", { x: x(tick), y: height - 4, class: "tick" }, format.ms(tick))),
    ),
    rows.map(([name, f], i) => {
      const y = i * rowHeight + 12;
      return s(
        "g",
        { class: "op" },
        s("title", {}, `${name}: p50 ${format.ms(f.p50_ms)}, p95 ${format.ms(f.p95_ms)}, p99 ${format.ms(f.p99_ms)} (${f.count} calls)`),
        s("text", { x: left - 8, y: y + 4, class: "op-name" }, name),
        s("line", { x1: x(f.p50_ms), x2: x(f.p99_ms), y1: y, y2: y, class: "range" }),
        s("circle", { cx: x(f.p50_ms), cy: y, r: 4, class: "p50" }),
        s("circle", { cx: x(f.p95_ms), cy: y, r: 3, class: "p95" }),
        s("circle", { cx: x(f.p99_ms), cy: y, r: 3, class: "p99" }),
      );
    }),
  );
}

/** A ring showing a ratio (the cache's hit rate). */
export function ring(ratio, label) {
  const r = 28;
  const circumference = 2 * Math.PI * r;
  const shown = ratio ?? 0;
  return h(
    "figure",
    { class: "ring" },
    s(
      "svg",
      { viewBox: "0 0 72 72", role: "img", "aria-label": `${label}: ${format.pct(ratio)}` },
      s("circle", { cx: 36, cy: 36, r, class: "ring-track" }),
      s("circle", { cx: 36, cy: 36, r, class: "ring-fill", "stroke-dasharray": `${shown * circumference} ${circumference}`, transform: "rotate(-90 36 36)" }),
      s("text", { x: 36, y: 41, class: "ring-text" }, format.pct(ratio)),
    ),
    h("figcaption", {}, label),
  );
}
