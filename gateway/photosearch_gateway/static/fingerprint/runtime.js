// onnxruntime-web as the caller hands it in: this package never imports it, and sets
// nothing on `ort.env` until createRuntime is called with the options to set.

// Which onnxruntime-web build each backend needs (files of its dist folder). The WebGPU
// build also runs wasm, but its wasm file is twice the size: load it only to use WebGPU.
export const ORT_MODULES = { wasm: "ort.wasm.min.mjs", webgpu: "ort.webgpu.min.mjs" };

// Threads only where SharedArrayBuffer exists (a cross-origin-isolated page), at most 4.
export function defaultThreads() {
  if (!globalThis.crossOriginIsolated) return 1;
  return Math.max(1, Math.min(4, globalThis.navigator?.hardwareConcurrency || 1));
}

// Adapters that run WebGPU on the CPU (SwiftShader, Mesa's llvmpipe/lavapipe): there the
// models ran tens of times slower than in wasm (docs/benchmarks/gateway.md).
const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|warp|basic render/i;

function softwareAdapter(adapter) {
  const info = adapter.info ?? {};
  if (info.isFallbackAdapter || adapter.isFallbackAdapter) return true;
  return SOFTWARE.test([info.vendor, info.architecture, info.description, info.device].join(" "));
}

function adapterName(adapter) {
  const info = adapter.info ?? {};
  return [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unnamed";
}

// Where the models should run: `{backend, adapter, reason}`, backend "webgpu" or "wasm".
// `preference` "auto": WebGPU when the browser offers a hardware adapter, wasm otherwise;
// "webgpu": WebGPU whenever an adapter exists, software ones too; "wasm": wasm. `gpu` is
// navigator.gpu (given for tests).
export async function chooseBackend({ preference = "auto", gpu = globalThis.navigator?.gpu } = {}) {
  if (!["auto", "webgpu", "wasm"].includes(preference)) {
    throw new TypeError(`backend preference must be "auto", "webgpu" or "wasm", not ${JSON.stringify(preference)}`);
  }
  if (preference === "wasm") return { backend: "wasm", adapter: null, reason: "asked for" };
  if (!gpu) return { backend: "wasm", adapter: null, reason: "this browser has no WebGPU" };
  let adapter = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (error) {
    return { backend: "wasm", adapter: null, reason: `no WebGPU adapter (${error.message})` };
  }
  if (!adapter) return { backend: "wasm", adapter: null, reason: "no WebGPU adapter" };
  const name = adapterName(adapter);
  if (preference === "auto" && softwareAdapter(adapter)) {
    return { backend: "wasm", adapter: name, reason: `the WebGPU adapter (${name}) runs on the CPU` };
  }
  // A device first, then let go: onnxruntime-web asks for its own, and one that is refused
  // there can leave the page hanging instead of failing.
  try {
    (await adapter.requestDevice()).destroy();
  } catch (error) {
    return { backend: "wasm", adapter: name, reason: `the WebGPU adapter (${name}) gave no device (${error.message})` };
  }
  return { backend: "webgpu", adapter: name, reason: preference === "webgpu" ? "asked for" : "a GPU adapter" };
}

// `ort`: the onnxruntime-web module (e.g. `import * as ort from "onnxruntime-web/wasm"`; for
// `backend: "webgpu"`, its WebGPU build, "onnxruntime-web/webgpu"). `wasmPaths`: where its
// .wasm and .mjs files are served (a URL prefix ending in "/"), left to onnxruntime-web when
// not given. `numThreads`: wasm threads (default: defaultThreads()). `proxy`: run the model in
// onnxruntime-web's own worker, so the page stays responsive while it runs (left as
// onnxruntime-web has it when not given; the page that has no Worker cannot). `backend`:
// "wasm" or "webgpu" (chooseBackend's choice). With WebGPU a node it has no kernel for runs on
// the CPU; a WebGPU that cannot start fails the session (no silent switch to wasm), so what
// `backend` says is where the models run.
export function createRuntime(ort, { wasmPaths, numThreads = defaultThreads(), proxy, backend = "wasm" } = {}) {
  if (!ort?.InferenceSession || !ort?.Tensor || !ort?.env?.wasm) {
    throw new TypeError("createRuntime needs the onnxruntime-web module (InferenceSession, Tensor, env)");
  }
  if (!(backend in ORT_MODULES)) throw new TypeError(`backend must be "wasm" or "webgpu", not ${JSON.stringify(backend)}`);
  if (backend === "webgpu" && !ort.env.webgpu) {
    throw new TypeError(`backend "webgpu" needs onnxruntime-web's WebGPU build (${ORT_MODULES.webgpu})`);
  }
  if (wasmPaths !== undefined) ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.wasm.numThreads = numThreads;
  if (proxy !== undefined) ort.env.wasm.proxy = Boolean(proxy) && typeof Worker !== "undefined";
  const executionProviders = [backend];
  return {
    ort,
    backend,
    threads: numThreads,
    createSession: (bytes) => ort.InferenceSession.create(bytes, { executionProviders, graphOptimizationLevel: "all" }),
    tensor: (data, dims) => new ort.Tensor("float32", data, dims),
  };
}
