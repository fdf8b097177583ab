// A model's ONNX files: downloaded once (progress, integrity check), kept in Cache Storage
// keyed by the file's sha256.

const CACHE = "photosearch-models-v1";

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// The ONNX files of a model (the gateway's /api/v1/config `model`): the fingerprint graph,
// and the local graph when the model has one. Each is {url, sha256, integrity, bytes}; the
// URLs are resolved against `baseUrl` (the gateway's address when the page is elsewhere).
export function modelFiles(asset, baseUrl) {
  const url = (path) => (baseUrl ? new URL(path, baseUrl).href : path);
  const file = (a) => ({ url: url(a.onnx_url), sha256: a.onnx_sha256, integrity: a.onnx_integrity, bytes: a.onnx_bytes });
  return { fingerprint: file(asset), local: asset.local ? file(asset.local) : null };
}

async function download(file, onProgress) {
  if (!globalThis.crypto?.subtle) {
    // Not a secure context: let the browser check the integrity (no byte-level progress).
    const reply = await fetch(file.url, { integrity: file.integrity });
    if (!reply.ok) throw new Error(`model download failed (HTTP ${reply.status})`);
    return new Uint8Array(await reply.arrayBuffer());
  }
  const reply = await fetch(file.url);
  if (!reply.ok || !reply.body) throw new Error(`model download failed (HTTP ${reply.status})`);
  const total = file.bytes || Number(reply.headers.get("content-length")) || 0;
  const parts = [];
  let received = 0;
  const reader = reply.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    received += value.length;
    onProgress(received, total);
  }
  const all = new Uint8Array(await new Blob(parts).arrayBuffer());
  const digest = hex(await crypto.subtle.digest("SHA-256", all));
  if (digest !== file.sha256) throw new Error("the model file is corrupt (sha256 mismatch)");
  return all;
}

// The ONNX bytes of one file: from Cache Storage when this exact file was fetched before.
// Storing it drops every cached file but those in `keep` (the current model's files).
// `onProgress(received, total, cached)`. The cache's keys are the page origin's
// /model-cache/<sha256> (Cache Storage needs URLs; nothing is fetched from them).
export async function modelBytes(file, onProgress = () => {}, keep = [file.sha256]) {
  const key = `/model-cache/${file.sha256}`;
  const cache = globalThis.caches ? await caches.open(CACHE) : null;
  const hit = cache && (await cache.match(key));
  if (hit) {
    onProgress(1, 1, true);
    return new Uint8Array(await hit.arrayBuffer());
  }
  const bytes = await download(file, onProgress);
  if (cache) {
    const current = new Set(keep.map((sha) => `/model-cache/${sha}`));
    for (const old of await cache.keys()) {
      if (!current.has(new URL(old.url).pathname)) await cache.delete(old); // one model at a time
    }
    await cache.put(key, new Response(bytes, { headers: { "content-type": "application/octet-stream" } }));
  }
  return bytes;
}
