// cam-widget's canvas front end (an anywidget ES module, loaded from the package: no build step, no CDN).
//
// The kernel sends each photo once, each RAW map once (float32 + shape) and the colormap tables once; this
// module does the rest of cam_widget.render.overlay in the browser, with the same arithmetic:
//   normalise  render.normalize_cam: NaN/inf -> 0, optional ReLU, (a - lo) / (hi - lo) in float32, clip [0, 1]
//   upsample   cv2.resize INTER_LINEAR on float32: pixel centres aligned (x = (dx + 0.5) * scale - 0.5),
//              borders clamped to the edge cell, a horizontal then a vertical pass (see indexMap)
//   quantise   cv2.convertScaleAbs(x, alpha=255): x * 255 rounded half to even, saturated
//   colour     the 256-entry lookup table sent by the kernel (matplotlib's, never re-derived here)
//   blend      cv2.addWeighted(heat, alpha, photo, 1 - alpha): rounded half to even, saturated
// Uint8ClampedArray stores round half to even and saturate, exactly like OpenCV's saturate_cast.
//
// Opacity, colormap, normalisation and scope come from the canvas model or, when linked, straight from the models
// of stock ipywidgets controls (their change events): a step repaints here without waiting for the kernel.
// The scope (cam_widget/ui/scope.py) sits on top of the normalisation: "map" each cell by it, "shared" one
// (0, max) scale over the non-contrast cells, "signed" each cell on (-m, m) (m: its largest magnitude), no ReLU,
// in the signed colormap; contrast cells are signed in every scope.
// A linked "choice" control (the panel's class dropdown) picks among the frames of `choices` (the kernel sent
// them with the frame): a class change among them paints here with no kernel round trip.

const MODES = ["minmax", "shared", "signed", "none", "fixed"];
const SCOPES = ["map", "shared", "signed"];
const MODEL_KEYS = ["alpha", "colormap", "normalize", "scope", "luts", "signed_colormaps", "columns", "note", "pins",
                    "legend", "scope_text"];
const FRAME_KEYS = ["cells", "photos", "status", "choices", "frame_key", "frame_override"]; // what the kernel shows
const STORES = new WeakMap(); // model -> decoded photos and index maps, shared by every view of the model

const CSS = `
.cam-canvas { font: 12px/1.4 var(--jp-ui-font-family, sans-serif); color: var(--jp-ui-font-color1, #222); }
.cam-canvas-grid { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.cam-canvas-grid.cam-canvas-columns { display: grid; }
.cam-canvas-figure { margin: 0; max-width: 100%; }
.cam-canvas-stage { position: relative; line-height: 0; max-width: 100%; }
.cam-canvas-stage canvas { max-width: 100%; height: auto; cursor: crosshair; display: block; }
.cam-canvas-pin { position: absolute; width: 9px; height: 9px; margin: -6px 0 0 -6px; border: 2px solid #fff;
  border-radius: 50%; box-shadow: 0 0 0 1px #000; pointer-events: none; }
.cam-canvas-label { font-weight: 600; }
.cam-canvas-readout, .cam-canvas-pinned { min-height: 1.4em; font-variant-numeric: tabular-nums; }
.cam-canvas-note { min-height: 0; }
.cam-canvas-error { color: #b00020; }
.cam-canvas-host.cam-canvas-live > .cam-canvas-fallback { display: none !important; }
.cam-explorer:has(.cam-canvas-live) > .cam-caption { display: none !important; }
.cam-canvas-caption .cam-legend-row { display: flex; align-items: center; gap: 6px; }
.cam-canvas-caption .cam-status { min-height: 1.6em; }
`;

function fmt(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(4);
}

function bytesOf(dv) {
  if (!dv) return new Uint8Array(0);
  if (dv instanceof ArrayBuffer) return new Uint8Array(dv);
  return new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
}

function float32Of(dv) {
  const b = bytesOf(dv);
  return new Float32Array(b.slice().buffer); // copy: the buffer offset need not be 4-aligned
}

// --- the render.py arithmetic ----------------------------------------------------------------------------------

// render._finite_map: NaN/inf -> 0 (then ReLU), float32
function finiteMap(raw, relu) {
  const a = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = Number.isFinite(raw[i]) ? raw[i] : 0;
    a[i] = relu && v < 0 ? 0 : v;
  }
  return a;
}

function minMax(a) {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < a.length; i++) {
    if (a[i] < lo) lo = a[i];
    if (a[i] > hi) hi = a[i];
  }
  return [lo, hi];
}

// render.shared_scale(maps, relu=True): (0, max of the finite values), (0, 1) when nothing is finite
function sharedScale(raws) {
  let hi = -Infinity, any = false;
  for (const raw of raws) {
    if (!raw) continue;
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i] > 0 ? raw[i] : 0;
      if (Number.isFinite(raw[i])) { any = true; if (v > hi) hi = v; }
    }
  }
  return any ? [0, hi] : [0, 1];
}

// scope.symmetric_scale([raw]): (-m, m), m the largest finite magnitude; (-1, 1) for an all-zero map
function symmetricScale(raw) {
  let m = 0;
  for (let i = 0; i < raw.length; i++) {
    const v = Math.abs(raw[i]);
    if (Number.isFinite(v) && v > m) m = v;
  }
  return m > 0 ? [-m, m] : [-1, 1];
}

// The scale of one cell under `scope` on top of normalisation `mode` (canvas.scope_args in Python), and whether the
// signed colormap colours it.  `shared`: sharedScale of the non-contrast cells (computed once per paint).
function scopeScale(scope, mode, cell, shared, sharedPlain) {
  if (cell.contrast || scope === "signed") {
    const [lo, hi] = symmetricScale(cell.raw);
    return {lo, hi, relu: false, signed: true};
  }
  if (scope === "shared") return {lo: sharedPlain[0], hi: sharedPlain[1], relu: true, signed: false};
  return {...scaleFor(mode, cell, shared), signed: cell.signed};
}

// Python's format(x, ".3g"), for the legend's numbers (the kernel's caption writes them so)
function g3(x) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const [mant, e] = x.toExponential(2).split("e");
  const exp = Number(e);
  if (exp < -4 || exp >= 3) {
    return `${mant.replace(/\.?0+$/, "")}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const s = x.toFixed(Math.max(0, 2 - exp));
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

// The [lo, hi] and relu that normalisation `mode` means for one cell (canvas.normalize_args in Python).
function scaleFor(mode, cell, shared) {
  if (mode === "shared") return {lo: shared[0], hi: shared[1], relu: true};
  if (mode === "none") return {lo: 0, hi: 1, relu: true};
  if (mode === "fixed" && cell.vrange) return {lo: cell.vrange[0], hi: cell.vrange[1], relu: cell.relu};
  const relu = mode === "signed" ? false : mode === "fixed" ? cell.relu : true;
  const [lo, hi] = minMax(finiteMap(cell.raw, relu));
  return {lo, hi, relu};
}

// render.normalize_cam: float32 (a - lo) / span, clipped to [0, 1]; all zeros when the span is empty
function unitMap(raw, lo, hi, relu) {
  const a = finiteMap(raw, relu);
  const span = hi - lo;
  if (!Number.isFinite(span) || span <= 0) return new Float32Array(a.length);
  const flo = Math.fround(lo), fspan = Math.fround(span);
  for (let i = 0; i < a.length; i++) {
    const v = Math.fround(Math.fround(a[i] - flo) / fspan);
    a[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return a;
}

// cv2.resize INTER_LINEAR coefficients along one axis: source index pairs and the float32 weight of the second.
// OpenCV's convention: x = (d + 0.5) * src / dst - 0.5, weights f and 1 - f, clamped to the edge cells (f = 0).
function linearTaps(dst, src) {
  const scale = src / dst;
  const i0 = new Int32Array(dst), i1 = new Int32Array(dst), w = new Float32Array(dst);
  for (let d = 0; d < dst; d++) {
    const x = (d + 0.5) * scale - 0.5;
    let s = Math.floor(x);
    let f = x - s;
    if (s < 0) { s = 0; f = 0; }
    if (s >= src - 1) { s = src - 1; f = 0; }
    i0[d] = s; i1[d] = Math.min(s + 1, src - 1); w[d] = f;
  }
  return {i0, i1, w};
}

// render.to_index: upsample the unit map to (H, W) (a horizontal then a vertical pass, float32 results), then
// x * 255 rounded half to even into uint8.  cv2.resize on float32 goes through Intel IPP in the opencv-python
// wheels, whose last-bit rounding is not documented; a + (b - a) * w in double, rounded to float32, reproduces it
// best of the forms measured (about 1 pixel in 10^6 lands on the other side of a quantisation step).
function indexMap(unit, sh, sw, H, W) {
  const out = new Uint8ClampedArray(H * W);
  if (sh === H && sw === W) { // render.upsample copies a map that already has the size
    for (let i = 0; i < out.length; i++) out[i] = Math.fround(unit[i] * 255);
    return out;
  }
  const tx = linearTaps(W, sw), ty = linearTaps(H, sh);
  const rows = new Float32Array(sh * W); // the horizontal pass, one row per source row
  for (let y = 0; y < sh; y++) {
    const base = y * sw, o = y * W;
    for (let x = 0; x < W; x++) {
      const a = unit[base + tx.i0[x]];
      rows[o + x] = a + (unit[base + tx.i1[x]] - a) * tx.w[x];
    }
  }
  for (let y = 0; y < H; y++) {
    const r0 = ty.i0[y] * W, r1 = ty.i1[y] * W, wy = ty.w[y], o = y * W;
    for (let x = 0; x < W; x++) {
      const a = rows[r0 + x];
      out[o + x] = Math.fround(Math.fround(a + (rows[r1 + x] - a) * wy) * 255);
    }
  }
  return out;
}

// render.blend: lut[index] * alpha + photo * (1 - alpha), opaque RGBA out.  cv2.addWeighted on uint8 computes
// fma(heat, alpha, photo * beta) in float32 (alpha, beta = 1 - alpha cast to float32), then rounds half to even:
// heat * a is exact in a double and the double sum of it and the float32 product is exact, so one fround gives
// the same float32 (byte-identical over all 256 x 256 pairs, checked against OpenCV).
function blend(photo, index, lut, alpha, out) {
  const a = Math.fround(alpha), b = Math.fround(1 - alpha);
  const f = Math.fround;
  const n = index.length;
  for (let i = 0, p = 0; i < n; i++, p += 4) {
    const k = index[i] * 3;
    out[p] = f(lut[k] * a + f(photo[p] * b));
    out[p + 1] = f(lut[k + 1] * a + f(photo[p + 1] * b));
    out[p + 2] = f(lut[k + 2] * a + f(photo[p + 2] * b));
    out[p + 3] = 255;
  }
}

// Cell.raw in the kernel: min and max of the finite values ((0, 0) when none is finite)
function rawRange(raw) {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i];
    if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  }
  return lo === Infinity ? [0, 0] : [lo, hi];
}

// A new element of the given tag and class name.
function make(tag, className) {
  const node = document.createElement(tag);
  node.className = className;
  return node;
}

// --- per-model store: decoded photos, index maps -----------------------------------------------------------------

class Store {
  constructor(model) {
    this.model = model;
    this.photos = new Map(); // key -> {pending: Promise, pixels: Uint8ClampedArray | null, w, h, error}
    this.indexes = new Map(); // cell id + scale + size -> Uint8ClampedArray (bounded, oldest dropped first)
    this.listeners = new Set();
  }

  photo(key, entry) {
    let p = this.photos.get(key);
    if (p) return p;
    p = {pixels: null, w: entry.shape[1], h: entry.shape[0], error: null};
    this.photos.set(key, p);
    const blob = new Blob([bytesOf(entry.data)], {type: entry.format === "jpeg" ? "image/jpeg" : "image/png"});
    p.pending = createImageBitmap(blob, {colorSpaceConversion: "none", premultiplyAlpha: "none"})
      .then((bmp) => {
        const c = document.createElement("canvas");
        c.width = bmp.width; c.height = bmp.height;
        const ctx = c.getContext("2d", {willReadFrequently: true});
        ctx.drawImage(bmp, 0, 0);
        p.pixels = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
        p.w = bmp.width; p.h = bmp.height;
        bmp.close();
      })
      .catch((e) => { p.error = String(e); })
      .finally(() => { for (const fn of this.listeners) fn(); });
    return p;
  }

  prune(keys) {
    for (const k of [...this.photos.keys()]) if (!keys.has(k)) this.photos.delete(k);
  }

  index(cell, scale, H, W) {
    const key = `${cell.id}|${scale.lo}|${scale.hi}|${scale.relu}|${H}x${W}`;
    let idx = this.indexes.get(key);
    if (idx) { this.indexes.delete(key); this.indexes.set(key, idx); return idx; }
    const unit = unitMap(cell.raw, scale.lo, scale.hi, scale.relu);
    idx = indexMap(unit, cell.shape[0], cell.shape[1], H, W);
    this.indexes.set(key, idx);
    while (this.indexes.size > 96) this.indexes.delete(this.indexes.keys().next().value);
    return idx;
  }
}

function storeFor(model) {
  let s = STORES.get(model);
  if (!s) { s = new Store(model); STORES.set(model, s); }
  return s;
}

// --- one view -----------------------------------------------------------------------------------------------------

class CanvasView {
  constructor(model, el) {
    this.model = model;
    this.store = storeFor(model);
    this.root = make("div", "cam-canvas");
    this.root.dataset.frame = "0";
    const style = document.createElement("style");
    style.textContent = CSS;
    this.grid = make("div", "cam-canvas-grid");
    this.noteEl = make("div", "cam-canvas-note");
    this.caption = this.makeCaption();
    this.root.append(style, this.grid, this.noteEl, this.caption.el);
    el.appendChild(this.root);
    this.figures = []; // per cell: {fig, canvas, ctx, label, readout, pinned, stage, image, shape}
    this.cells = null; // the frame on display, decoded (re-picked when `reselect`)
    this.statusHtml = "";
    this.reselect = true; // the frame on display may have to change (a choice, a kernel frame)
    this.stale = false; // a context control changed: the choices may be of the old context
    this.controls = {}; // name -> {model, values}
    this.controlToken = 0;
    this.scheduled = false;
    this.frame = 0;
    this.disposed = false;
    this.onStore = () => this.schedule();
    this.store.listeners.add(this.onStore);
    this.onModel = () => this.schedule();
    this.onCells = () => { this.stale = false; this.reselect = true; this.schedule(); };
    this.onChoice = () => { this.reselect = true; this.schedule(); };
    this.onContext = () => { this.stale = true; this.reselect = true; };
    this.onControls = () => this.bindControls();
    for (const name of FRAME_KEYS) model.on(`change:${name}`, this.onCells);
    for (const name of MODEL_KEYS) {
      model.on(`change:${name}`, this.onModel);
    }
    model.on("change:controls", this.onControls);
    model.on("change:control_options", this.onControls);
    this.bindControls();
    this.schedule();
  }

  dispose() {
    this.disposed = true;
    this.store.listeners.delete(this.onStore);
    for (const name of FRAME_KEYS) this.model.off(`change:${name}`, this.onCells);
    for (const name of MODEL_KEYS) {
      this.model.off(`change:${name}`, this.onModel);
    }
    this.model.off("change:controls", this.onControls);
    this.model.off("change:control_options", this.onControls);
    this.unbindControls();
  }

  // Follow linked controls' models directly (their own change events; no message to or from the kernel).
  unbindControls() {
    for (const c of Object.values(this.controls)) c.model.off(null, c.fn);
    this.controls = {};
  }

  async bindControls() {
    const token = ++this.controlToken;
    this.unbindControls();
    const refs = this.model.get("controls") || {};
    const options = this.model.get("control_options") || {};
    const found = {};
    for (const [name, ref] of Object.entries(refs)) {
      if (typeof ref !== "string" || !ref.startsWith("IPY_MODEL_")) continue;
      try {
        found[name] = {model: await this.model.widget_manager.get_model(ref.slice("IPY_MODEL_".length)),
                       values: options[name] || null};
      } catch (e) {
        console.warn("cam-widget canvas: cannot follow control", name, e);
      }
    }
    if (token !== this.controlToken || this.disposed) return;
    this.controls = found;
    for (const [name, c] of Object.entries(found)) {
      c.fn = name.startsWith("context") ? this.onContext : name === "choice" ? this.onChoice : this.onModel;
      c.model.on("change:value", c.fn);
      c.model.on("change:index", c.fn);
    }
    this.reselect = true;
    this.schedule();
  }

  setting(name) {
    const c = this.controls[name];
    if (c) {
      const index = c.model.get("index");
      if (c.values && typeof index === "number" && index >= 0 && index < c.values.length) return c.values[index];
      const labels = c.model.get("_options_labels");
      if (labels && typeof index === "number" && index >= 0) return labels[index];
      const v = c.model.get("value");
      if (v !== undefined && v !== null) return v;
    }
    return this.model.get(name);
  }

  schedule() {
    if (this.scheduled || this.disposed) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      if (this.disposed) return;
      try {
        this.paint();
      } catch (e) {
        console.error("cam-widget canvas:", e);
        this.noteEl.innerHTML = "";
        const err = make("span", "cam-canvas-error");
        err.textContent = `canvas error: ${e && e.message ? e.message : e}`;
        this.noteEl.appendChild(err);
      }
    });
  }

  readCells(raw) {
    const photos = this.model.get("photos") || {};
    this.store.prune(new Set(Object.keys(photos)));
    return raw.map((c) => {
      const entry = photos[c.photo];
      return {
        id: c.id, photoKey: c.photo, entry, label: c.label || "", shape: c.shape,
        raw: c.map ? float32Of(c.map) : null, vrange: c.vrange || null, relu: c.relu !== false, signed: !!c.signed,
        contrast: !!c.contrast,
      };
    });
  }

  layout(cells) {
    const cols = this.model.get("columns") || 0;
    this.grid.classList.toggle("cam-canvas-columns", cols > 0);
    this.grid.style.gridTemplateColumns = cols > 0 ? `repeat(${cols}, max-content)` : "";
    while (this.figures.length > cells.length) this.figures.pop().fig.remove();
    while (this.figures.length < cells.length) this.figures.push(this.makeFigure(this.figures.length));
  }

  makeFigure(i) {
    const fig = make("figure", "cam-canvas-figure");
    const stage = make("div", "cam-canvas-stage");
    const canvas = make("canvas", "cam-canvas-cell");
    canvas.dataset.cell = String(i);
    canvas.dataset.frame = "0";
    stage.appendChild(canvas);
    const cap = document.createElement("figcaption");
    const label = make("div", "cam-canvas-label");
    const readout = make("div", "cam-canvas-readout");
    const pinned = make("div", "cam-canvas-pinned");
    cap.append(label, readout, pinned);
    fig.append(stage, cap);
    this.grid.appendChild(fig);
    const f = {fig, stage, canvas, ctx: canvas.getContext("2d", {willReadFrequently: true}), label, readout, pinned,
               out: null, index: i};
    canvas.addEventListener("mousemove", (e) => this.hover(f, e));
    canvas.addEventListener("mouseleave", () => { f.readout.textContent = ""; delete f.readout.dataset.row; });
    canvas.addEventListener("click", (e) => this.pin(f, e));
    return f;
  }

  // The frame to show: the kernel's (`cells`, `status`) or, for the linked choice control's value, the choice the
  // kernel sent ahead; null: keep the frame on display (the kernel has not sent the right one yet).
  pickFrame() {
    const m = this.model;
    const explicit = {cells: m.get("cells") || [], status: m.get("status") || ""};
    if (!this.controls.choice) return explicit;
    const v = this.setting("choice");
    const k = v === undefined || v === null ? null : String(v);
    const fk = m.get("frame_key") || "";
    if (k !== null && fk === k && (m.get("frame_override") || this.stale)) return explicit;
    const choice = k !== null && !this.stale ? (m.get("choices") || {})[k] : undefined;
    if (choice) return {cells: choice.cells || [], status: choice.status || ""};
    if (fk === k || !this.cells) return explicit;
    return null;
  }

  paint() {
    if (this.reselect || !this.cells) {
      const f = this.pickFrame();
      if (f) {
        this.cells = this.readCells(f.cells);
        this.statusHtml = f.status;
        this.reselect = false;
      }
    }
    const cells = this.cells || [];
    this.layout(cells);
    const mode = MODES.includes(this.setting("normalize")) ? this.setting("normalize") : "minmax";
    const scope = SCOPES.includes(this.setting("scope")) ? this.setting("scope") : "map";
    const cmap = this.setting("colormap");
    const luts = this.model.get("luts") || {};
    const lut = luts[cmap] ? bytesOf(luts[cmap]) : null;
    const signedName = (this.model.get("signed_colormaps") || {})[cmap] || cmap;
    const signedLut = luts[signedName] ? bytesOf(luts[signedName]) : null;
    let alpha = Number(this.setting("alpha"));
    if (!Number.isFinite(alpha)) alpha = 0.5;
    alpha = Math.min(1, Math.max(0, alpha));
    const shared = mode === "shared" ? sharedScale(cells.map((c) => c.raw)) : null;
    const sharedPlain = scope === "shared" ? sharedScale(cells.map((c) => (c.contrast ? null : c.raw))) : null;
    const scales = cells.map((c) => (c.raw ? scopeScale(scope, mode, c, shared, sharedPlain) : null));
    const notes = [];
    if (!lut) notes.push(`no lookup table for colormap ${JSON.stringify(cmap)} yet`);
    cells.forEach((cell, i) => {
      const f = this.figures[i];
      f.cell = cell;
      f.scale = scales[i];
      f.label.textContent = cell.label;
      if (!cell.entry) { notes.push(`cell ${i}: its photo is missing`); return; }
      const photo = this.store.photo(cell.photoKey, cell.entry);
      if (photo.error) { notes.push(`cell ${i}: the photo could not be decoded (${photo.error})`); return; }
      if (!photo.pixels || !lut) return; // painted when the decode finishes / the table arrives
      const W = photo.w, H = photo.h;
      if (f.canvas.width !== W || f.canvas.height !== H) { f.canvas.width = W; f.canvas.height = H; f.out = null; }
      if (!f.out) f.out = f.ctx.createImageData(W, H);
      if (cell.raw) {
        const index = this.store.index(cell, f.scale, H, W);
        blend(photo.pixels, index, f.scale.signed && signedLut ? signedLut : lut, alpha, f.out.data);
      } else {
        f.out.data.set(photo.pixels); // the photo alone (no map for this cell)
      }
      f.ctx.putImageData(f.out, 0, 0);
      f.canvas.dataset.alpha = String(alpha);
      f.canvas.dataset.colormap = cmap;
      f.canvas.dataset.normalize = mode;
      f.canvas.dataset.scope = scope;
      f.canvas.dataset.frame = String(Number(f.canvas.dataset.frame) + 1);
    });
    this.drawPins();
    this.drawCaption(cells, scales, scope, cmap, signedName, lut, signedLut);
    const note = this.model.get("note") || "";
    this.noteEl.textContent = [note, ...notes].filter(Boolean).join(" · ");
    this.frame += 1;
    this.root.dataset.frame = String(this.frame);
  }

  // The caption under the grid: the colour-bar legend (drawn here from the cells' scales, so it follows the
  // colormap and scope controls with the picture) and the kernel's status line (cam_widget/ui/caption.py's).
  makeCaption() {
    const el = make("div", "cam-canvas-caption");
    const legend = make("div", "cam-legend");
    const row = make("div", "cam-legend-row");
    const lo = make("span", "cam-legend-lo");
    lo.title = "colour-bar minimum";
    const bar = make("canvas", "cam-legend-bar");
    bar.width = 256; bar.height = 12;
    const hi = make("span", "cam-legend-hi");
    hi.title = "colour-bar maximum";
    const note = make("small", "cam-legend-note");
    row.append(lo, bar, hi, note);
    const none = document.createElement("small");
    none.textContent = "no map";
    legend.append(row, none);
    const status = make("div", "cam-status");
    el.append(legend, status);
    el.style.display = "none";
    return {el, legend, row, lo, bar, hi, note, none, status, lut: null};
  }

  // frames._legend in the kernel: one map shows its scale and raw range; a grid shows numbers only when one scale
  // holds for every cell (shared scope), else min / max; the scope's words unless it is "map" in the single view.
  drawCaption(cells, scales, scope, cmap, signedName, lut, signedLut) {
    const c = this.caption;
    const mode = this.model.get("legend") || "";
    const status = this.statusHtml || "";
    c.el.style.display = mode || status ? "" : "none";
    if (c.statusHtml !== status) { c.status.innerHTML = status; c.statusHtml = status; } // the kernel's own HTML
    c.legend.style.display = mode ? "" : "none";
    if (!mode) return;
    const mapped = cells.map((cell, i) => ({cell, scale: scales[i]})).filter((f) => f.scale);
    c.row.style.display = mapped.length ? "flex" : "none";
    c.none.style.display = mapped.length ? "none" : "";
    if (!mapped.length) return;
    const signed = mapped.every((f) => f.scale.signed);
    const table = signed && signedLut ? signedLut : lut;
    const name = signed ? signedName : cmap;
    if (table && c.lut !== table) {
      const ctx = c.bar.getContext("2d");
      const img = ctx.createImageData(256, 12);
      for (let y = 0, p = 0; y < 12; y++) {
        for (let x = 0; x < 256; x++, p += 4) {
          img.data[p] = table[3 * x]; img.data[p + 1] = table[3 * x + 1]; img.data[p + 2] = table[3 * x + 2];
          img.data[p + 3] = 255;
        }
      }
      ctx.putImageData(img, 0, 0);
      c.lut = table;
    }
    c.bar.setAttribute("aria-label", `${name} colour bar`);
    const words = (this.model.get("scope_text") || {})[scope] || scope;
    const notes = [];
    let scale = null;
    if (mode === "single") {
      const f = mapped[0];
      scale = [f.scale.lo, f.scale.hi];
      const [rlo, rhi] = rawRange(f.cell.raw);
      notes.push(`raw map min ${g3(rlo)}, max ${g3(rhi)}` + (f.scale.relu && rlo < 0 ? " (negative evidence clipped to 0)" : ""));
      if (scope !== "map") notes.push(words);
    } else {
      const plain = mapped.filter((f) => !f.scale.signed);
      const one = new Set(plain.map((f) => `${f.scale.lo}|${f.scale.hi}`));
      if (scope === "shared" && one.size === 1) scale = [plain[0].scale.lo, plain[0].scale.hi];
      notes.push(words);
    }
    c.lo.textContent = scale ? g3(scale[0]) : "min";
    c.hi.textContent = scale ? g3(scale[1]) : "max";
    c.note.textContent = notes.join(" · ");
  }

  // The map cell under a mouse event: (row, col) at the layer's resolution and the raw value there.
  probe(f, e) {
    const cell = f.cell;
    if (!cell || !cell.raw) return null;
    const rect = f.canvas.getBoundingClientRect();
    if (rect.width <= 0 || rect.height <= 0) return null;
    const [mh, mw] = cell.shape;
    const fx = (e.clientX - rect.left) / rect.width, fy = (e.clientY - rect.top) / rect.height;
    const col = Math.min(mw - 1, Math.max(0, Math.floor(fx * mw)));
    const row = Math.min(mh - 1, Math.max(0, Math.floor(fy * mh)));
    const value = cell.raw[row * mw + col];
    let max = -Infinity;
    for (const v of cell.raw) if (Number.isFinite(v) && v > max) max = v;
    return {cell: f.index, row, col, value, max, fraction: max > 0 ? value / max : null};
  }

  describe(p) {
    const frac = p.fraction === null ? "max ≤ 0" : `${(100 * p.fraction).toFixed(1)}% of max`;
    return `value ${fmt(p.value)} at (row ${p.row}, col ${p.col}) · ${frac}`;
  }

  hover(f, e) {
    const p = this.probe(f, e);
    if (!p) return;
    f.readout.textContent = this.describe(p);
    Object.assign(f.readout.dataset, {row: p.row, col: p.col, value: String(p.value), fraction: String(p.fraction)});
  }

  pin(f, e) {
    const p = this.probe(f, e);
    if (!p) return;
    const pins = [...(this.model.get("pins") || []), {cell: p.cell, row: p.row, col: p.col, value: p.value}];
    this.model.set("pins", pins.slice(-32));
    this.model.save_changes(); // a click is rare: the kernel may use the pinned points
    this.drawPins();
  }

  drawPins() {
    const pins = this.model.get("pins") || [];
    this.figures.forEach((f) => {
      for (const m of f.stage.querySelectorAll(".cam-canvas-pin")) m.remove();
      const mine = pins.filter((p) => p.cell === f.index);
      const cell = f.cell;
      if (!cell || !cell.raw) { f.pinned.textContent = ""; return; }
      const [mh, mw] = cell.shape;
      for (const p of mine) {
        const dot = make("div", "cam-canvas-pin");
        dot.style.left = `${(100 * (p.col + 0.5)) / mw}%`;
        dot.style.top = `${(100 * (p.row + 0.5)) / mh}%`;
        f.stage.appendChild(dot);
      }
      const last = mine[mine.length - 1];
      if (last && last.row < mh && last.col < mw) {
        const value = cell.raw[last.row * mw + last.col];
        let max = -Infinity;
        for (const v of cell.raw) if (Number.isFinite(v) && v > max) max = v;
        f.pinned.textContent = `pinned: ${this.describe({...last, value, fraction: max > 0 ? value / max : null})}`;
      } else {
        f.pinned.textContent = "";
      }
    });
  }
}

// A host widget (CanvasOutput's box) shows kernel-rendered fall-back frames next to the canvas until the canvas
// is known to render: mark the host live as soon as this view is inside it, so the fall-back hides at once.
function markHost(el, tries = 120) {
  const host = el.closest(".cam-canvas-host");
  if (host) host.classList.add("cam-canvas-live");
  else if (tries > 0) requestAnimationFrame(() => markHost(el, tries - 1));
}

function render({model, el}) {
  const view = new CanvasView(model, el);
  markHost(el);
  model.send({event: "ready"}); // the kernel's handshake: this front end exists and rendered
  return () => view.dispose();
}

export default {render};
