// The model in the page: download once (progress, integrity check, Cache Storage keyed by
// the file's sha256), run with onnxruntime-web (wasm, threads when cross-origin isolated).
import * as ort from "/vendor/ort/ort.wasm.min.mjs";
import { decodeToRGB, toTensor } from "/static/js/preprocess.js";

export { ort };

const CACHE = "photosearch-models-v1";

ort.env.wasm.wasmPaths = "/vendor/ort/";
ort.env.wasm.numThreads = self.crossOriginIsolated
  ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1))
  : 1;

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// The ONNX files of a model (/config's `model`): the fingerprint graph, and the local
// graph when the model has one. Each is {url, sha256, integrity, bytes}.
export function modelFiles(asset) {
  const file = (a) => ({ url: a.onnx_url, sha256: a.onnx_sha256, integrity: a.onnx_integrity, bytes: a.onnx_bytes });
  return { fingerprint: file(asset), local: asset.local ? file(asset.local) : null };
}

async function download(file, onProgress) {
  if (!self.crypto?.subtle) {
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
export async function modelBytes(file, onProgress = () => {}, keep = [file.sha256]) {
  const key = `/model-cache/${file.sha256}`;
  const cache = self.caches ? await caches.open(CACHE) : null;
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

export async function createSession(bytes) {
  return ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
}

export class Fingerprinter {
  static async load(asset, onProgress) {
    const files = modelFiles(asset);
    const keep = [files.fingerprint.sha256, files.local?.sha256].filter(Boolean);
    const bytes = await modelBytes(files.fingerprint, onProgress, keep);
    return new Fingerprinter(asset, await createSession(bytes));
  }

  constructor(asset, session) {
    this.asset = asset;
    this.spec = asset.preprocess;
    this.session = session;
  }

  // A photo file -> the L2-normalised fingerprint (plain array of numbers).
  async compute(file) {
    return this.fingerprint(await this.decode(file));
  }

  // A photo file -> {rgb, width, height}: oriented 8-bit RGB, decoded once for both passes.
  async decode(file) {
    return decodeToRGB(file, this.spec);
  }

  async fingerprint({ rgb, width, height }) {
    const { data, dims } = toTensor(rgb, width, height, this.spec);
    const input = new ort.Tensor("float32", data, dims);
    const started = performance.now();
    const outputs = await this.session.run({ [this.spec.input_name]: input });
    this.lastRunMs = performance.now() - started; // the model's share of the pass
    const values = outputs[this.spec.output_name].data;
    let norm = 0;
    for (const v of values) norm += v * v;
    norm = Math.sqrt(norm) || 1;
    return Array.from(values, (v) => v / norm);
  }
}
