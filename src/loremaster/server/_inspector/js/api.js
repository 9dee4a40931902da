// The server's REST API: JSON in and out, the bearer token when the server asks for one,
// and every error as an ApiError carrying the server's {"error": {code, message, details}}.

import { askForToken, authHeaders } from "./auth.js";

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function url(path, query) {
  const target = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== null && value !== undefined && value !== "") target.searchParams.set(key, value);
  }
  return target;
}

async function errorOf(response) {
  try {
    const { error } = await response.json();
    return new ApiError(response.status, error.code, error.message, error.details ?? {});
  } catch {
    return new ApiError(response.status, "http_error", `${response.status} ${response.statusText}`);
  }
}

/**
 * One request. Answers {status, data, etag}; throws ApiError. A 401 asks the user for a
 * token once and tries again with it.
 */
export async function request(path, { method = "GET", query, body, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...authHeaders(), ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] ??= "application/json";
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (error) {
    throw new ApiError(0, "unreachable", `the server cannot be reached (${error.message})`);
  }
  if (response.status === 401) {
    const problem = await errorOf(response);
    await askForToken(problem.message);
    return request(path, { method, query, body, headers });
  }
  if (!response.ok) throw await errorOf(response);
  const data = response.status === 204 || response.status === 304 ? null : await response.json();
  const tag = response.headers.get("ETag");
  return { status: response.status, data, etag: tag ? Number(tag.replaceAll('"', "")) : null };
}

export const get = async (path, query) => (await request(path, { query })).data;
export const post = async (path, body, query) =>
  (await request(path, { method: "POST", body: body ?? {}, query })).data;

/** The context's own URL, with its id escaped. */
export const contextPath = (id, rest = "") => `/v1/contexts/${encodeURIComponent(id)}${rest}`;

let me = null;

/** Who the server takes this tab for: {user_id, name, local_mode} (asked once). */
export function whoAmI() {
  me ??= get("/v1/me").catch((error) => {
    me = null;
    throw error;
  });
  return me;
}
