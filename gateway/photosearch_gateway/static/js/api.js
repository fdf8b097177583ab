// Calls to the gateway's JSON API; errors carry the server's message.
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

// `onReply`: sees the HTTP reply (e.g. its headers) before its body is read.
export async function api(path, { method = "GET", json, form, token, onReply } = {}) {
  const headers = {};
  if (json !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const body = json !== undefined ? JSON.stringify(json) : form;
  const reply = await fetch(path, { method, headers, body });
  onReply?.(reply);
  if (reply.status === 204) return null;
  const data = await reply.json().catch(() => null);
  if (!reply.ok) throw new ApiError(reply.status, data);
  return data;
}

// A Server-Timing header ("candidates;dur=1.2, names;dur=0.4") as [[stage, ms], ...].
export function serverTimings(header) {
  return (header ?? "").split(",").map((part) => part.trim()).filter(Boolean).map((part) => {
    const [stage, ...params] = part.split(";");
    const dur = params.map((p) => p.trim()).find((p) => p.startsWith("dur="));
    return [stage.trim(), dur ? Number(dur.slice(4)) : NaN];
  });
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}
