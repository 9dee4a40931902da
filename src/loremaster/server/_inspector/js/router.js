// Deep links: every page is a URL after "#" (so a link to a context, a version or a diff
// is the inspector's one page plus that fragment), e.g. #/contexts/<id>/diff?a=<v1>&b=<v2>.

const patterns = [];

/** Register `page` (an object with `show(main, route)`) for a path like /contexts/:id. */
export function route(pattern, page) {
  const names = [];
  const source = pattern.replace(/:(\w+)/g, (_, name) => {
    names.push(name);
    return "([^/]+)";
  });
  patterns.push({ regex: new RegExp(`^${source}/?$`), names, page, pattern });
}

/** The route of the current location: {path, params, query, page}. */
export function current() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = hash.split("?", 2);
  const query = Object.fromEntries(new URLSearchParams(search));
  for (const { regex, names, page, pattern } of patterns) {
    const match = regex.exec(path);
    if (match) {
      const params = Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(match[i + 1])]));
      return { path, params, query, page, pattern };
    }
  }
  return { path, params: {}, query, page: null, pattern: null };
}

/** The fragment of a path and query (empty values left out). */
export function href(path, query = {}) {
  const search = new URLSearchParams(
    Object.entries(query).filter(([, value]) => value !== null && value !== undefined && value !== ""),
  ).toString();
  return `#${path}${search ? `?${search}` : ""}`;
}

/** Go to a path; `replace` changes the current history entry instead of adding one. */
export function go(path, query = {}, { replace = false } = {}) {
  const target = href(path, query);
  if (target === location.hash) return;
  if (replace) {
    history.replaceState(null, "", target);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    location.hash = target;
  }
}

export const contextHref = (id, rest = "", query = {}) =>
  href(`/contexts/${encodeURIComponent(id)}${rest}`, query);
