#!/usr/bin/env node
// ONNX Runtime's CPU engine, the peer of bench/vs_ort.py: one model's session,
// kept open and timed on demand. The same command protocol as bench_plan:
// one command a line on stdin, one JSON object a line on stdout.
//
//   run IN OUT    forward on IN (raw float32, the model's input shape),
//                 write the first output (raw float32) to OUT
//   time W R      W untimed runs, then R timed ones: {"ms", "min", "max", "times"}
//   quit
//
//   node bench/ort_bench.js MODEL.onnx --batch B --input CxHxW [--threads T]
//                           [--profile PREFIX] [--cpu-time]
//
// --cpu-time: `time` reports the process's CPU time (all threads) per run
// instead of wall time (a development aid on a loaded machine).
//
// --profile: ORT's own profiler is on (SessionOptions.enableProfiling) and
// every run is recorded; `quit` ends the profile and prints its file name
// (a Chrome-trace JSON with each node's time, in microseconds).
//
// Session: CPU execution provider, every graph optimisation ("all": constant
// folding, node fusions, NCHWc layout transformation), T intra-op threads,
// 1 inter-op thread, sequential execution. onnxruntime-node is looked up in
// bench/ort/node_modules (npm install --prefix bench/ort --ignore-scripts
// onnxruntime-node), then on NODE_PATH; without it this exits with status 77
// and says so.
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

function loadOrt() {
  const tries = [path.join(__dirname, 'ort', 'node_modules', 'onnxruntime-node'),
                 'onnxruntime-node'];
  for (const t of tries) {
    try {
      const ort = require(t);
      let version = '?';
      try {
        version = require(path.join(path.dirname(require.resolve(t)), '..', 'package.json')).version;
      } catch (e) { /* the version is for the record only */ }
      return {ort, version};
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  process.stderr.write('ort_bench: onnxruntime-node is not installed; install it with\n' +
                       '  npm install --prefix bench/ort --ignore-scripts onnxruntime-node\n');
  process.exit(77);
}

function parseArgs(argv) {
  const a = {threads: 2, batch: 1, input: null, model: null, profile: null, cpu: false};
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--threads') a.threads = parseInt(argv[++i], 10);
    else if (k === '--batch') a.batch = parseInt(argv[++i], 10);
    else if (k === '--profile') a.profile = argv[++i];
    else if (k === '--cpu-time') a.cpu = true;
    else if (k === '--input') a.input = argv[++i].split('x').map((s) => parseInt(s, 10));
    else if (!a.model) a.model = k;
    else throw new Error('unexpected argument ' + k);
  }
  if (!a.model || !a.input || a.input.length !== 3 || !(a.threads > 0) || !(a.batch > 0))
    throw new Error('usage: ort_bench.js MODEL.onnx --batch B --input CxHxW [--threads T]');
  return a;
}

function median(v) {
  const s = [...v].sort((x, y) => x - y);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

function loadavg() {
  return 'load ' + fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

async function main() {
  const a = parseArgs(process.argv);
  const {ort, version} = loadOrt();
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(a.model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    ...(a.profile ? {enableProfiling: true, profileFilePrefix: a.profile} : {}),
  });
  const prep = Number(process.hrtime.bigint() - t0) / 1e9;
  const inName = session.inputNames[0], outName = session.outputNames[0];
  const dims = [a.batch, ...a.input];
  const n = dims.reduce((x, y) => x * y, 1);
  let x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = ((i * 2654435761) % 2001) / 1000 - 1;
  const feed = () => ({[inName]: new ort.Tensor('float32', x, dims)});
  const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
  out({ready: 1, prepare_s: prep, ort: version, input: inName, output: outName});

  const rl = readline.createInterface({input: process.stdin});
  for await (const line of rl) {
    const w = line.trim().split(/\s+/);
    try {
      if (w[0] === 'run' && w.length === 3) {
        const buf = fs.readFileSync(w[1]);
        if (buf.length !== n * 4) throw new Error(w[1] + ': expected ' + n * 4 + ' bytes');
        x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
        const r = await session.run(feed());
        const y = r[outName].data;
        fs.writeFileSync(w[2], Buffer.from(y.buffer, y.byteOffset, y.byteLength));
        out({ok: 1, dims: r[outName].dims});
      } else if (w[0] === 'time' && w.length === 3) {
        const warm = parseInt(w[1], 10), rep = parseInt(w[2], 10);
        const f = feed();
        for (let i = 0; i < warm; i++) await session.run(f);
        const t = [];
        for (let i = 0; i < rep; i++) {
          if (a.cpu) {
            const c = process.cpuUsage();
            await session.run(f);
            const d = process.cpuUsage(c);
            t.push((d.user + d.system) / 1e3);
            continue;
          }
          const s = process.hrtime.bigint();
          await session.run(f);
          t.push(Number(process.hrtime.bigint() - s) / 1e6);
        }
        out({times: t, ms: median(t), min: Math.min(...t), max: Math.max(...t), load: loadavg()});
      } else if (w[0] === 'quit') {
        if (a.profile) { await session.endProfiling(); out({profile: a.profile}); }
        break;
      } else {
        out({error: 'unknown command'});
      }
    } catch (e) {
      out({error: String(e.message || e)});
    }
  }
  process.exit(0);
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({error: String(e.message || e)}) + '\n');
  process.exit(1);
});
