#!/usr/bin/env node
// Node benchmarks, peers and llmledger alike; one case per process (so peak RSS is per case).
// usage: node bench_node.js CASE [ENCODING]
// Peers come from $PEERS_WORK/node/node_modules; `llmledger.*` cases load this checkout's package
// (bindings-node/js/index.cjs, native module built by bench/peers/run.sh).
// Env: PEERS_WORK (corpus.txt, chat.json), REPS (default 7), MIN_BATCH_S (0.2).
// Prints one JSON line, same schema as bench_py.py.
'use strict';
const fs = require('fs');
const path = require('path');

const W = process.env.PEERS_WORK;
const REPO = path.join(__dirname, '..', '..');
const REPS = parseInt(process.env.REPS || '7', 10);
const MIN_BATCH_S = parseFloat(process.env.MIN_BATCH_S || '0.2');
const MODEL = 'gpt-4o';
const PROMPT = 1200, CACHED = 1024, COMPLETION = 350;

const nm = path.join(W, 'node', 'node_modules');
const req = (m) => require(require.resolve(m, { paths: [nm] }));
const ver = (m) => JSON.parse(fs.readFileSync(path.join(nm, m, 'package.json'), 'utf8')).version;
const now = () => Number(process.hrtime.bigint()) / 1e9;
const corpus = () => fs.readFileSync(path.join(W, 'corpus.txt'), 'utf8');
const chat = () => JSON.parse(fs.readFileSync(path.join(W, 'chat.json'), 'utf8'));

function throughput(fn, text, extra) {
  const tokens = fn(); // warm-up; also the token count reported
  const times = [];
  for (let i = 0; i < REPS; i++) {
    if (global.gc) global.gc();
    const t = now();
    const n = fn();
    times.push(now() - t);
    if (n !== tokens) throw new Error(`token count changed ${n} != ${tokens}`);
  }
  return { kind: 'throughput', tokens, bytes: Buffer.byteLength(text, 'utf8'), times_s: times, ...extra };
}

let sink = 0; // defeats dead-code elimination
function perCall(fn, extra) {
  const value = fn();
  for (let i = 0; i < 1000; i++) sink += +fn() || 0; // JIT warm-up
  let n = 1;
  for (;;) {
    const t = now();
    for (let i = 0; i < n; i++) sink += +fn() || 0;
    if (now() - t >= MIN_BATCH_S) break;
    n *= 2;
  }
  const ns = [];
  for (let r = 0; r < REPS; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink += +fn() || 0;
    ns.push(Number(process.hrtime.bigint() - t) / n);
  }
  return { kind: 'per_call', value, loops: n, ns_per_call: ns, ...extra };
}

function emit(lib, kase, res, extra) {
  console.log(JSON.stringify({ lang: 'node', lib, case: kase, ...(extra || {}), ...res }));
}

function sumOver(msgs, f) { let s = 0; for (const m of msgs) s += f(m); return s; }

// ---- A: token counting --------------------------------------------------
function gptTokenizer(kase, enc) {
  const t0 = now();
  const g = req(`gpt-tokenizer/encoding/${enc}`);
  g.encode('warm the lazy rank load'); // ranks are decoded lazily on first use
  const init_ms = (now() - t0) * 1e3;
  const text = corpus(); const msgs = text.split('\n\n');
  // gpt-tokenizer keeps an LRU merge cache across calls; "cold" clears it before every pass.
  const cold = kase.endsWith('.cold');
  const wrap = (f) => (cold ? () => { g.clearMergeCache(); return f(); } : f);
  let res;
  if (kase.startsWith('gpt-tokenizer.encode.whole')) res = throughput(wrap(() => g.encode(text).length), text, { calls: 1 });
  else if (kase.startsWith('gpt-tokenizer.countTokens.whole')) res = throughput(wrap(() => g.countTokens(text)), text, { calls: 1 });
  else if (kase.startsWith('gpt-tokenizer.countTokens.msgs')) res = throughput(wrap(() => sumOver(msgs, (m) => g.countTokens(m))), text, { calls: msgs.length });
  else throw new Error('unknown case ' + kase);
  emit(`gpt-tokenizer ${ver('gpt-tokenizer')}`, kase, res, { encoding: enc, init_ms });
}

// ---- B: cost ------------------------------------------------------------
function costCases(kase) {
  if (kase === 'gpt-tokenizer.estimateCost') {
    const g = req('gpt-tokenizer/model/gpt-4o');
    // estimateCost(n) prices n tokens of every kind; a usage needs 3 calls (uncached in, cached in, out).
    // gpt-4o has no cached_input price in gpt-tokenizer 4.0.0, so it falls back to the input price.
    const f = () => {
      const a = g.estimateCost(PROMPT - CACHED).main, b = g.estimateCost(CACHED).main, c = g.estimateCost(COMPLETION).main;
      return a.input + (b.cached_input ?? b.input) + c.output;
    };
    return emit(`gpt-tokenizer ${ver('gpt-tokenizer')}`, kase, perCall(f));
  }
  if (kase === 'gpt-tokenizer.countTokens.chat20') {
    const g = req('gpt-tokenizer/model/gpt-4o');
    const msgs = chat();
    return emit(`gpt-tokenizer ${ver('gpt-tokenizer')}`, kase, perCall(() => g.countTokens(msgs)));
  }
  throw new Error('unknown case ' + kase);
}

// ---- llmledger (this checkout) -------------------------------------------
function llmledger(kase, enc) {
  let t0 = now();
  const ll = require(path.join(REPO, 'bindings-node', 'js', 'index.cjs'));
  const require_ms = (now() - t0) * 1e3;
  const lib = `llmledger ${JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version}`;
  // countTokens takes a model; these two resolve to the encodings exactly.
  const model = { o200k_base: 'gpt-4o', cl100k_base: 'gpt-4' }[enc];
  if (kase === 'llmledger.countTokens.whole' || kase === 'llmledger.countTokens.msgs') {
    t0 = now();
    ll.countTokens('hi', model); // a first count, reported where the peers report building their encoder
    const init_ms = (now() - t0) * 1e3;
    const text = corpus(); const msgs = text.split('\n\n');
    const res = kase.endsWith('.whole')
      ? throughput(() => ll.countTokens(text, model), text, { calls: 1 })
      : throughput(() => sumOver(msgs, (m) => ll.countTokens(m, model)), text, { calls: msgs.length });
    return emit(lib, kase, res, { encoding: enc, init_ms, require_ms });
  }
  if (kase === 'llmledger.cost') {
    // Input buckets are disjoint: 176 uncached + 1024 cached = the 1200 prompt tokens.
    const usage = { model: MODEL, inputTokens: PROMPT - CACHED, cacheReadTokens: CACHED, outputTokens: COMPLETION };
    return emit(lib, kase, perCall(() => ll.cost(usage).exact), { require_ms });
  }
  if (kase === 'llmledger.countTokens.chat20') {
    const msgs = chat();
    return emit(lib, kase, perCall(() => ll.countTokens(msgs, MODEL)), { require_ms });
  }
  throw new Error('unknown case ' + kase);
}

function main() {
  const kase = process.argv[2];
  const enc = process.argv[3] || 'o200k_base';
  if (kase.startsWith('llmledger.')) return llmledger(kase, enc);
  if (kase.endsWith('.chat20') || kase.endsWith('estimateCost')) costCases(kase);
  else if (kase.startsWith('gpt-tokenizer.')) gptTokenizer(kase, enc);
  else throw new Error('unknown case ' + kase);
  if (sink === 12345.678) console.error('');
}
main();
