/**
 * The HDF5 worker of src/model/keras.ts: h5wasm (the HDF5 C library in WebAssembly) in its own
 * thread, answering { op: 'list' | 'read' | 'write' } messages with { ok, result } or
 * { ok: false, error, aborted }. Plain JavaScript, so that it runs without a TypeScript loader.
 *
 * Memory is bounded twice: the parent starts this thread with resourceLimits (its JavaScript
 * heap), and the WebAssembly heap may not grow past workerData.maxWasmBytes: emscripten grows
 * its heap through WebAssembly.Memory#grow and treats an exception there as an allocation
 * failure, which HDF5 reports as an error. A file that declares huge sizes therefore fails one
 * request instead of taking the process's memory.
 */
import { parentPort, workerData } from 'node:worker_threads';

const MAX_NODES = 10000;
const MAX_DEPTH = 8;
const MAX_ATTR_BYTES = 1 << 20;
let h5, M;

const grow = WebAssembly.Memory.prototype.grow;
WebAssembly.Memory.prototype.grow = function (pages) {
  if ((this.buffer.byteLength + pages * 65536) > workerData.maxWasmBytes) {
    throw new RangeError(`the HDF5 reader's memory limit (${workerData.maxWasmBytes} bytes) was reached`);
  }
  return grow.call(this, pages);
};

function attrStrings(obj, key) {
  const attrs = obj.attrs;
  if (!Object.prototype.hasOwnProperty.call(attrs, key)) return null;
  const a = attrs[key];
  const md = a.metadata;
  if (md.type !== M.H5T_class_t.H5T_STRING.value) return [];
  if (md.size * Number(md.total_size) > MAX_ATTR_BYTES) throw new Error('attribute ' + key + ' is implausibly large');
  const v = a.value;
  const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v : [];
  return list.map((s) => String(s).replace(/\0+$/, ''));
}

function list(path) {
  const f = new h5.File(path, 'r');
  try {
    let root = f;
    let rootPath = '';
    if (f.keys().includes('model_weights')) {
      const g = f.get('model_weights');
      if (g instanceof h5.Group) { root = g; rootPath = 'model_weights'; }
    }
    const layerNames = attrStrings(root, 'layer_names');
    const layers = [];
    if (layerNames) {
      const keys = new Set(root.keys());
      for (const name of layerNames.slice(0, MAX_NODES)) {
        const g = keys.has(name) ? root.get(name) : null;
        layers.push({ name, weightNames: g instanceof h5.Group ? attrStrings(g, 'weight_names') : null });
      }
    }
    const datasets = [];
    const describe = (e, p) => {
      const md = e.metadata;
      datasets.push({
        path: p,
        shape: md.shape === null ? null : md.shape.map(Number),
        float: md.type === M.H5T_class_t.H5T_FLOAT.value && md.littleEndian && (md.size === 4 || md.size === 8),
        dtype: String(e.dtype),
      });
    };
    if (layers.some((l) => l.weightNames && l.weightNames.length > 0)) {
      // Keras' attributes name every weight: look those up instead of walking the whole tree
      for (const l of layers) {
        for (const wn of l.weightNames || []) {
          const p = l.name + '/' + wn;
          const e = root.get(p);
          if (e instanceof h5.Dataset) describe(e, p);
        }
      }
    } else {
      let nodes = 0;
      const walk = (g, prefix, depth) => {
        for (const k of g.keys()) {
          if (++nodes > MAX_NODES) throw new Error('more than ' + MAX_NODES + ' objects');
          const e = g.get(k);
          const p = prefix ? prefix + '/' + k : k;
          if (e instanceof h5.Dataset) describe(e, p);
          else if (e instanceof h5.Group && depth < MAX_DEPTH) walk(e, p, depth + 1);
        }
      };
      walk(root, '', 0);
    }
    return { root: rootPath, layerNames, layers, datasets };
  } finally {
    f.close();
  }
}

function read(path, items) {
  const f = new h5.File(path, 'r');
  try {
    return items.map(({ dataset, count }) => {
      const d = f.get(dataset);
      if (!(d instanceof h5.Dataset)) throw new Error(dataset + ' is not a dataset');
      const md = d.metadata;
      const n = md.shape === null ? -1 : md.shape.reduce((a, b) => a * Number(b), 1);
      // never allocate more than the caller asked for
      if (n !== count) throw new Error(dataset + ' changed shape');
      if (md.type !== M.H5T_class_t.H5T_FLOAT.value || !md.littleEndian) throw new Error(dataset + ' is not little-endian float');
      const v = d.value;
      if (v instanceof Float32Array && v.length === count) return v;
      if (v instanceof Float64Array && v.length === count) return Float32Array.from(v);
      throw new Error(dataset + ' did not read as ' + count + ' floats');
    });
  } finally {
    f.close();
  }
}

function write(path, layers) {
  const f = new h5.File(path, 'w');
  try {
    // fixed-length, null-terminated byte strings: what h5py (and so Keras 2) writes and expects
    const strAttr = (obj, name, value) => {
      const arr = Array.isArray(value) ? value : [value];
      const len = Math.max(1, ...arr.map((s) => Buffer.byteLength(s))) + 1;
      obj.create_attribute(name, value, Array.isArray(value) ? [value.length] : [], 'A' + len);
    };
    strAttr(f, 'backend', 'tensorflow');
    strAttr(f, 'keras_version', '2.2.4');
    strAttr(f, 'layer_names', layers.map((l) => l.name));
    for (const layer of layers) {
      const g = f.create_group(layer.name);
      strAttr(g, 'weight_names', layer.weights.map((w) => layer.name + '/' + w.kind + ':0'));
      const inner = g.create_group(layer.name);
      for (const w of layer.weights) {
        inner.create_dataset({ name: w.kind + ':0', data: w.data, shape: w.shape, dtype: '<f' });
      }
    }
  } finally {
    f.close();
  }
}

(async () => {
  try {
    h5 = await import(workerData.h5wasmUrl);
    M = await h5.ready;
    // turn HDF5's error stack into a JS exception instead of printing it to stderr
    M.activate_throwing_error_handler();
  } catch (e) {
    parentPort.postMessage({ ready: false, error: String((e && e.message) || e) });
    return;
  }
  parentPort.postMessage({ ready: true });
  parentPort.on('message', (req) => {
    try {
      let result;
      let transfer = [];
      if (req.op === 'list') result = list(req.path);
      else if (req.op === 'read') { result = read(req.path, req.items); transfer = result.map((a) => a.buffer); }
      else if (req.op === 'write') { write(req.path, req.layers); result = null; }
      else throw new Error('unknown op ' + req.op);
      parentPort.postMessage({ ok: true, result }, transfer);
    } catch (e) {
      const error = String((e && e.message) || e);
      parentPort.postMessage({ ok: false, error, aborted: e instanceof WebAssembly.RuntimeError || /Aborted\(/.test(error) });
    }
  });
})();
