// Local descriptors in the page: the model's local graph (local.onnx) run on the whole
// photo as taken and, when search asks for them, turned 90 and 270 degrees clockwise; each
// view's cells become int8 codes, of which the most salient (what search keeps anyway) are
// sent, base64-encoded, to POST /api/v1/search. Descriptors only: no pixels leave.
import { base64, keepSalient, quantise } from "./codes.js";
import { modelBytes, modelFiles } from "./models.js";
import { rotateClockwise, toLocalTensor } from "./preprocess.js";

// The photo as taken first, then turned (search tries each view against each candidate).
export const TURNS = [0, 90, 270];
// Most photos are upright: send this view alone first, and the turns only when search says
// the photo as taken verified nothing well (turned_views_wanted).
export const AS_TAKEN = TURNS.slice(0, 1);
export const TURNED = TURNS.slice(1);

const nextFrame = () => new Promise((resolve) => setTimeout(resolve, 0));

export class RegionDescriber {
  // The same options as Fingerprinter.load; the asset must have a `local` graph.
  static async load(asset, { runtime, baseUrl, onProgress } = {}) {
    if (!runtime) throw new TypeError("RegionDescriber.load needs a runtime (createRuntime(ort, ...))");
    const files = modelFiles(asset, baseUrl);
    if (!files.local) throw new Error(`the model ${asset.model_id} has no local graph`);
    const keep = [files.fingerprint.sha256, files.local.sha256];
    const bytes = await modelBytes(files.local, onProgress, keep);
    const session = await runtime.createSession(bytes);
    return new RegionDescriber(asset.preprocess, runtime, session, asset.local.salient_cells);
  }

  // `budget`: cells sent per view (the most salient); 0 = the whole grid.
  constructor(spec, runtime, session, budget = 0) {
    this.spec = spec;
    this.local = spec.local;
    this.runtime = runtime;
    this.session = session;
    this.budget = budget;
  }

  // Raw output of the local graph for one view: {map (dim*rows*cols), dims, runMs}.
  async run({ rgb, width, height }) {
    const { data, dims } = toLocalTensor(rgb, width, height, this.spec);
    const started = performance.now();
    const outputs = await this.session.run({ [this.local.input_name]: this.runtime.tensor(data, dims) });
    const output = outputs[this.local.output_name];
    return { map: output.data, dims: output.dims, runMs: performance.now() - started };
  }

  // Decoded photo -> one {rows, cols, dim, codes, cells?} per turn (clockwise degrees, in
  // order), each view's time (ms) and the model's share of it.
  async describe(photo, onView = () => {}, turns = TURNS) {
    const views = [];
    const times = [];
    const runTimes = [];
    for (const [index, degrees] of turns.entries()) {
      onView(index, turns.length);
      await nextFrame(); // let the page show the progress before the next view's work
      const started = performance.now();
      const turned = rotateClockwise(photo.rgb, photo.width, photo.height, degrees);
      const { map, dims, runMs } = await this.run(turned);
      const [, dim, rows, cols] = dims;
      if (dim !== this.local.dim) throw new Error(`the local graph gave ${dim}-d cells, not ${this.local.dim}`);
      const all = quantise(map, dim, rows, cols);
      const { codes, cells } = this.budget ? keepSalient(all, rows, cols, dim, this.budget) : { codes: all, cells: [] };
      views.push({ rows, cols, dim, codes: base64(codes), ...(cells.length ? { cells } : {}) });
      times.push(performance.now() - started);
      runTimes.push(runMs);
    }
    return { views, times, runTimes };
  }
}
