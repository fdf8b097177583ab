// Live scan: the rear camera's frames, a few a second, each fingerprinted on the device and
// searched like a photo (only the vectors leave the page). Blurred or moving frames are
// skipped; the scan stops by itself once the same item has held the "match" band for a
// short run of frames, and the page asks for one tap to confirm.
import { photoFromFrame } from "/static/fingerprint/index.js";

const FRAME_MS = 250; // at most four frames a second; a search in flight skips frames
const LONG_SIDE = 640; // frames are searched at this size, like a phone photo scaled down
const STABLE_FRAMES = 3; // the same "match" this many frames in a row stops the scan
const PROBE_SIDE = 96; // the grey thumbnail the blur and motion checks look at
// Skipped below this sharpness (variance of the Laplacian, 0-255 grey) or above this
// motion (mean absolute change from the last frame): a shaking or unfocused camera.
const MIN_SHARPNESS = 8;
const MAX_MOTION = 12;

export const scanAvailable = () => Boolean(navigator.mediaDevices?.getUserMedia);

function greyProbe(video) {
  const scale = PROBE_SIDE / Math.max(video.videoWidth, video.videoHeight);
  const w = Math.max(3, Math.round(video.videoWidth * scale));
  const h = Math.max(3, Math.round(video.videoHeight * scale));
  const canvas = new OffscreenCanvas(w, h);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(video, 0, 0, w, h);
  const rgba = context.getImageData(0, 0, w, h).data;
  const grey = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) grey[i] = 0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2];
  return { grey, w, h };
}

function sharpness({ grey, w, h }) {
  let sum = 0;
  let sumSq = 0;
  const n = (w - 2) * (h - 2);
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      const lap = 4 * grey[i] - grey[i - 1] - grey[i + 1] - grey[i - w] - grey[i + w];
      sum += lap;
      sumSq += lap * lap;
    }
  }
  return sumSq / n - (sum / n) ** 2;
}

function motion(probe, previous) {
  if (!previous || previous.grey.length !== probe.grey.length) return 0;
  let total = 0;
  for (let i = 0; i < probe.grey.length; i++) total += Math.abs(probe.grey[i] - previous.grey[i]);
  return total / probe.grey.length;
}

export class Scanner {
  // `identify(photo)`: fingerprint and search one frame, resolving to search's answer;
  // `onResult(result)`: an answer to show; `onStop(reason, result)`: "matched", "stopped".
  constructor(video, spec, { identify, onResult, onStop }) {
    Object.assign(this, { video, spec, identify, onResult, onStop });
    this.stats = { frames: 0, searched: 0, blurred: 0, moving: 0 };
    this.running = false;
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 } },
      audio: false,
    });
    this.video.srcObject = this.stream;
    await this.video.play();
    this.running = true;
    this.held = { itemId: null, frames: 0 };
    this.timer = setInterval(() => this.tick(), FRAME_MS);
  }

  stop(reason = "stopped", result = null) {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.timer);
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.video.srcObject = null;
    this.onStop(reason, result);
  }

  async tick() {
    if (!this.running || this.busy || !this.video.videoWidth) return;
    this.stats.frames += 1;
    const probe = greyProbe(this.video);
    const moved = motion(probe, this.previous);
    this.previous = probe;
    if (moved > MAX_MOTION) { this.stats.moving += 1; return; }
    if (sharpness(probe) < MIN_SHARPNESS) { this.stats.blurred += 1; return; }
    this.busy = true;
    try {
      const { videoWidth: w, videoHeight: h } = this.video;
      const frame = photoFromFrame(this.video, w, h, this.spec, LONG_SIDE);
      this.lastFrame = frame;
      const result = await this.identify(frame);
      if (!this.running) return;
      this.stats.searched += 1;
      this.onResult(result);
      this.holdOrReset(result);
    } finally {
      this.busy = false;
    }
  }

  holdOrReset(result) {
    const top = result.band === "match" ? result.candidates[0]?.item.id : null;
    this.held = top && top === this.held.itemId
      ? { itemId: top, frames: this.held.frames + 1 }
      : { itemId: top, frames: top ? 1 : 0 };
    if (this.held.frames >= STABLE_FRAMES) this.stop("matched", result);
  }

  // The frame that matched, as a JPEG (for "add my photo to this item").
  async frameBlob() {
    const canvas = this.lastFrame?.canvas;
    if (!canvas) return null;
    return canvas.convertToBlob
      ? canvas.convertToBlob({ type: "image/jpeg", quality: 0.9 })
      : new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
  }
}
