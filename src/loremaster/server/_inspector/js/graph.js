// The version timeline as a graph beside the version rows (newest on top, one lane per
// branch): a line from each version to its parent, forks where a branch starts from
// another's version, dashed lines from a merged branch's version into the merge.

import { s } from "./dom.js";

export const ROW = 44;
const LANE = 18;
const PAD = 12;

/** Lanes: main first, then the branches in the order listed, then any other seen. */
export function lanesOf(versions, branches) {
  const lanes = new Map();
  for (const name of ["main", ...branches.map((b) => b.name)]) if (!lanes.has(name)) lanes.set(name, lanes.size);
  for (const version of versions) if (!lanes.has(version.branch)) lanes.set(version.branch, lanes.size);
  return lanes;
}

function curve(x1, y1, x2, y2) {
  if (x1 === x2) return `M${x1},${y1} L${x2},${y2}`;
  const turn = y2 - ROW / 2;
  return `M${x1},${y1} L${x1},${turn} C${x1},${y2 - ROW / 4} ${x2},${y2 - ROW / 4} ${x2},${y2}`;
}

/**
 * The SVG for `versions` (newest first, as the rows below it). A parent not among them
 * (an older page) gets a line running off the bottom.
 */
export function timeline(versions, lanes) {
  const row = new Map(versions.map((v, i) => [v.version_id, i]));
  const x = (branch) => PAD + lanes.get(branch) * LANE;
  const y = (index) => index * ROW + ROW / 2;
  const width = PAD * 2 + Math.max(0, lanes.size - 1) * LANE;
  const height = versions.length * ROW;
  const edges = [];
  versions.forEach((version, i) => {
    const from = [x(version.branch), y(i)];
    const links = [
      [version.parent_version_id, "parent"],
      [version.merged_version_id, "merge"],
    ];
    for (const [target, kind] of links) {
      if (!target) continue;
      const j = row.get(target);
      const to = j === undefined ? [from[0], height] : [x(versions[j].branch), y(j)];
      const lane = kind === "merge" && j !== undefined ? lanes.get(versions[j].branch) : lanes.get(version.branch);
      edges.push(s("path", { d: curve(from[0], from[1], to[0], to[1]), class: `edge ${kind}`, "data-lane": lane % 6 }));
    }
  });
  const dots = versions.map((version, i) =>
    s(
      "circle",
      {
        cx: x(version.branch),
        cy: y(i),
        r: version.merged_version_id ? 6 : version.automatic ? 4 : 5.5,
        class: ["dot", version.automatic ? "auto" : "checkpoint", version.merged_version_id ? "merge" : ""].join(" ").trim(),
        "data-lane": lanes.get(version.branch) % 6,
      },
      s("title", {}, `#${version.number} on ${version.branch}`),
    ),
  );
  return s("svg", { class: "timeline", width, height, viewBox: `0 0 ${width} ${height}`, "aria-hidden": "true" }, edges, dots);
}
