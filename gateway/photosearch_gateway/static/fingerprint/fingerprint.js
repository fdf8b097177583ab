// The fingerprint of a photo in the page: the model's ONNX graph run with onnxruntime-web
// (the runtime of createRuntime) on the photo preprocessed as preprocess.json says.
import { modelBytes, modelFiles } from "./models.js";
import { decodeToRGB, toTensor } from "./preprocess.js";

export class Fingerprinter {
  // `asset`: the gateway's /api/v1/config `model` ({model_id, onnx_url, onnx_sha256, ...,
  // preprocess, local}); `runtime`: createRuntime's; `baseUrl`: what the asset's URLs are
  // relative to (the gateway, when the page is on another origin).
  static async load(asset, { runtime, baseUrl, onProgress } = {}) {
    if (!runtime) throw new TypeError("Fingerprinter.load needs a runtime (createRuntime(ort, ...))");
    const files = modelFiles(asset, baseUrl);
    const keep = [files.fingerprint.sha256, files.local?.sha256].filter(Boolean);
    const bytes = await modelBytes(files.fingerprint, onProgress, keep);
    return new Fingerprinter(asset, runtime, await runtime.createSession(bytes));
  }

  constructor(asset, runtime, session) {
    this.asset = asset;
    this.spec = asset.preprocess;
    this.runtime = runtime;
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
    const started = performance.now();
    const outputs = await this.session.run({ [this.spec.input_name]: this.runtime.tensor(data, dims) });
    this.lastRunMs = performance.now() - started; // the model's share of the pass
    const values = outputs[this.spec.output_name].data;
    let norm = 0;
    for (const v of values) norm += v * v;
    norm = Math.sqrt(norm) || 1;
    return Array.from(values, (v) => v / norm);
  }
}
