// The coordinator's JSON API, called from the browser with the user's token
// (kept in sessionStorage: gone when the tab closes).

const TOKEN_KEY = "greenmesh.token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An API error: the status and the server's `error` message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** `method path` under /api/v1 with the signed-in user's token; resolves to the JSON body. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { accept: "application/json" };
  const t = token.get();
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const resp = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, (json && json.error) || `${resp.status} ${resp.statusText}`);
  }
  return json;
}

/** Uploads `file` as a blob (`POST /blobs`); resolves to `{sha256, size, reference}`. */
export async function uploadBlob(file) {
  const t = token.get();
  const resp = await fetch("/api/v1/blobs", {
    method: "POST",
    headers: { authorization: `Bearer ${t}`, "content-type": "application/octet-stream" },
    body: file,
  });
  const json = await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, (json && json.error) || `${resp.status} ${resp.statusText}`);
  return json;
}
