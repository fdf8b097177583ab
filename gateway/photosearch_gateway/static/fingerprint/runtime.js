// onnxruntime-web as the caller hands it in: this package never imports it, and sets
// nothing on `ort.env` until createRuntime is called with the options to set.

// Threads only where SharedArrayBuffer exists (a cross-origin-isolated page), at most 4.
export function defaultThreads() {
  if (!globalThis.crossOriginIsolated) return 1;
  return Math.max(1, Math.min(4, globalThis.navigator?.hardwareConcurrency || 1));
}

// `ort`: the onnxruntime-web module (e.g. `import * as ort from "onnxruntime-web/wasm"`).
// `wasmPaths`: where its .wasm and .mjs files are served (a URL prefix ending in "/"), left
// to onnxruntime-web when not given. `numThreads`: wasm threads (default: defaultThreads()).
// `proxy`: run the model in onnxruntime-web's own worker, so the page stays responsive while
// it runs (left as onnxruntime-web has it when not given; the page that has no Worker
// cannot).
export function createRuntime(ort, { wasmPaths, numThreads = defaultThreads(), proxy } = {}) {
  if (!ort?.InferenceSession || !ort?.Tensor || !ort?.env?.wasm) {
    throw new TypeError("createRuntime needs the onnxruntime-web module (InferenceSession, Tensor, env)");
  }
  if (wasmPaths !== undefined) ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.wasm.numThreads = numThreads;
  if (proxy !== undefined) ort.env.wasm.proxy = Boolean(proxy) && typeof Worker !== "undefined";
  return {
    ort,
    createSession: (bytes) =>
      ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" }),
    tensor: (data, dims) => new ort.Tensor("float32", data, dims),
  };
}
