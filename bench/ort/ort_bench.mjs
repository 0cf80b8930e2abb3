// ort_bench.mjs: ONNX Runtime (CPU) latency of one model, printed as the JSON `kiln bench --json` uses.
//
//   node ort_bench.mjs MODEL.onnx [--inputs DIR] [--threads N] [--warmup W] [--iters K]
//                      [--opt disabled|basic|extended|all] [--json]
//
// --inputs DIR: DIR/input_K.pb TensorProto files in model-input order (the ONNX test-data layout).
// Without it: deterministic pseudo-random inputs from the model's metadata (dynamic dims -> 1,
// floats in [-1,1), integers in [0,10), booleans false). One session: intra-op N threads, inter-op
// 1, sequential, graph optimizations 'all'. Prints one JSON object on stdout (--json is accepted
// and is the only format, so both runtimes take the same flags).
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';

function parseArgs(argv) {
  const a = { model: null, inputs: null, threads: 1, warmup: 5, iters: 20, opt: 'all' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    const num = () => { const n = Number(v); if (!Number.isInteger(n) || n < 0) throw new Error(`${k}: bad value ${v}`); i++; return n; };
    if (k === '--inputs') { a.inputs = v; i++; }
    else if (k === '--threads') a.threads = num();
    else if (k === '--warmup') a.warmup = num();
    else if (k === '--iters') a.iters = num();
    else if (k === '--opt') { a.opt = v; i++; }
    else if (k === '--json') { /* the only output format */ }
    else if (k.startsWith('--') || a.model) throw new Error(`unknown argument ${k}`);
    else a.model = k;
  }
  if (!a.model) throw new Error('usage: node ort_bench.mjs MODEL.onnx [--inputs DIR] [--threads N] [--warmup W] [--iters K] [--json]');
  if (a.threads < 1 || a.iters < 1) throw new Error('--threads and --iters must be at least 1');
  return a;
}

// --- TensorProto: dims (1), data_type (2), typed value fields and raw_data (9) ----------------
const TYPES = {
  1: ['float32', Float32Array], 2: ['uint8', Uint8Array], 3: ['int8', Int8Array], 4: ['uint16', Uint16Array],
  5: ['int16', Int16Array], 6: ['int32', Int32Array], 7: ['int64', BigInt64Array], 9: ['bool', Uint8Array],
  11: ['float64', Float64Array], 12: ['uint32', Uint32Array], 13: ['uint64', BigUint64Array],
};
const ARRAY_OF = Object.fromEntries(Object.values(TYPES));

function readVarint(buf, pos) {
  let v = 0n, shift = 0n;
  for (;;) {
    if (pos.at >= buf.length) throw new Error('truncated varint');
    const c = buf[pos.at++];
    v |= BigInt(c & 0x7f) << shift;
    if (!(c & 0x80)) return v;
    shift += 7n;
  }
}

// Numbers from field `f` with wire type `w`: packed (w=2) or one at a time.
function readValues(buf, pos, f, w, out) {
  const fixed = f === 4 ? 4 : f === 10 ? 8 : 0;  // float_data, double_data
  const one = (b, p) => {
    if (fixed === 4) { const x = b.readFloatLE(p.at); p.at += 4; return x; }
    if (fixed === 8) { const x = b.readDoubleLE(p.at); p.at += 8; return x; }
    return readVarint(b, p);
  };
  if (w !== 2) { out.push(one(buf, pos)); return; }
  const n = Number(readVarint(buf, pos)), sub = buf.subarray(pos.at, pos.at + n), q = { at: 0 };
  pos.at += n;
  while (q.at < sub.length) out.push(one(sub, q));
}

function readTensor(file) {
  const buf = fs.readFileSync(file), pos = { at: 0 };
  const dims = [], vals = [];
  let code = 1, raw = null;
  while (pos.at < buf.length) {
    const key = Number(readVarint(buf, pos)), f = key >> 3, w = key & 7;
    if (f === 1) { const d = []; readValues(buf, pos, 7, w, d); dims.push(...d.map(Number)); }
    else if (f === 2 && w === 0) code = Number(readVarint(buf, pos));
    else if (f === 9 && w === 2) { const n = Number(readVarint(buf, pos)); raw = buf.subarray(pos.at, pos.at + n); pos.at += n; }
    else if ([4, 5, 7, 10, 11].includes(f)) readValues(buf, pos, f, w, vals);
    else if (w === 0) readVarint(buf, pos);  // fields a tensor does not need
    else if (w === 1) pos.at += 8;
    else if (w === 5) pos.at += 4;
    else if (w === 2) { const n = Number(readVarint(buf, pos)); pos.at += n; }  // n first: it moves pos
    else throw new Error(`${file}: bad wire type ${w}`);
  }
  if (!TYPES[code]) throw new Error(`${file}: unsupported data_type ${code}`);
  const [type, A] = TYPES[code];
  let data;
  if (raw) data = new A(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));  // copy: aligned
  else if (A === BigInt64Array) data = A.from(vals, v => BigInt.asIntN(64, BigInt(v)));
  else if (A === BigUint64Array) data = A.from(vals, v => BigInt.asUintN(64, BigInt(v)));
  else data = A.from(vals, v => (typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : v));
  return new ort.Tensor(type, type === 'bool' ? Array.from(data, x => x !== 0) : data, dims);
}

// --- deterministic random inputs from the session's metadata ----------------------------------
function randomTensor(meta, k) {
  const dims = (meta?.shape ?? [1]).map(d => (typeof d === 'number' && d > 0 ? d : 1));
  const type = meta?.type ?? 'float32', n = dims.reduce((a, b) => a * b, 1);
  let seed = (12345 + 7919 * k) >>> 0;
  const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) / 16777216; };
  if (type === 'bool') return new ort.Tensor(type, Array.from({ length: n }, () => false), dims);
  const A = ARRAY_OF[type];
  if (!A) throw new Error(`input ${meta?.name}: unsupported type ${type}`);
  let data;
  if (A === BigInt64Array || A === BigUint64Array) data = A.from({ length: n }, () => BigInt(Math.floor(rnd() * 10)));
  else if (A === Float32Array || A === Float64Array) data = A.from({ length: n }, () => rnd() * 2 - 1);
  else data = A.from({ length: n }, () => Math.floor(rnd() * 10));
  return new ort.Tensor(type, data, dims);
}

function quantile(sorted, q) {  // nearest rank
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function median(sorted) {
  const n = sorted.length, h = n >> 1;
  return n % 2 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
}

function modelName(file) {
  const abs = path.resolve(file), base = path.basename(abs, '.onnx');
  return base === 'model' ? path.basename(path.dirname(abs)) : base;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(a.model, {
    intraOpNumThreads: a.threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: a.opt,
  });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const feeds = {};
  session.inputNames.forEach((name, k) => {
    feeds[name] = a.inputs ? readTensor(path.join(a.inputs, `input_${k}.pb`))
      : randomTensor(session.inputMetadata?.[k], k);
  });
  for (let i = 0; i < a.warmup; i++) await session.run(feeds);
  const ms = [];
  for (let i = 0; i < a.iters; i++) {
    const s = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  ms.sort((x, y) => x - y);
  const r = {
    runtime: 'ort', version: ort.env.versions?.common ?? '1.30.0', model: modelName(a.model),
    threads: a.threads, warmup: a.warmup, iters: ms.length,
    min_ms: ms[0], median_ms: median(ms), p90_ms: quantile(ms, 0.9), max_ms: ms[ms.length - 1],
    mean_ms: ms.reduce((x, y) => x + y, 0) / ms.length,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024, load_ms: loadMs,
  };
  console.log(JSON.stringify(r));
}

main().catch(e => { console.error(`ort_bench: ${e.message}`); process.exit(1); });
