// @photosearch/fingerprint: a photo's fingerprint and local descriptors computed in the
// browser, as the photosearch gateway's POST /api/v1/search takes them. No import of
// onnxruntime-web and nothing done on import: pass its module to createRuntime.
export { chooseBackend, createRuntime, defaultThreads, ORT_MODULES } from "./runtime.js";
export { modelBytes, modelFiles } from "./models.js";
export { Fingerprinter } from "./fingerprint.js";
export { AS_TAKEN, RegionDescriber, TURNED, TURNS } from "./local.js";
export { photoFromFrame } from "./preprocess.js";
