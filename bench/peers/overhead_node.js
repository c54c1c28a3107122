#!/usr/bin/env node
// What llmledger adds to an official SDK call, in Node: the same call through an unwrapped and a wrapped
// client, against the local mock provider (HTTP/1.1 keep-alive on loopback). One case per process.
//
// usage: node overhead_node.js SDK UNIT STORE     (same arguments and JSON line as overhead_py.py)
//   SDK   openai (chat.completions.create) | anthropic (messages.create)
//   UNIT  call | chunk (one chunk of a CHUNKS-chunk chat stream; openai only)
//   STORE sqlite (a ledger file in a temporary directory) | memory
// Env: MOCK_URL, ROUNDS (10), CALLS per round (60; streams: CALLS/50, at least 1), CHUNKS per stream (1000).
// The SDKs come from this checkout's node_modules (its dev dependencies), llmledger from bindings-node/js.
// Method as in overhead_py.py: calls alternate (unwrapped, wrapped, …); each call's CPU time (here
// process.cpuUsage, the whole process: Node 20 has no per-thread clock, so V8's helper threads count too)
// is taken and a round's figure per side is the median of its calls. The ledger's own threads
// (`llmledger-writer`, the tokio threads it writes on) work outside the calls: their CPU time over the
// interleaved phase and its final flush (/proc/self/task/*/schedstat) divided by the wrapped calls is
// `background_ns` (the driver adds it).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const REPO = path.join(__dirname, '..', '..');
const MOCK = process.env.MOCK_URL;
const ROUNDS = parseInt(process.env.ROUNDS || '10', 10);
const CALLS = parseInt(process.env.CALLS || '60', 10);
const CHUNKS = parseInt(process.env.CHUNKS || '1000', 10);
const MESSAGES = [{ role: 'user', content: 'Say hello.' }];

const fromRepo = (m) => require(require.resolve(m, { paths: [REPO] }));
const ver = (m) => JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules', m, 'package.json'), 'utf8')).version;

function clients(sdk) {
  if (sdk === 'openai') {
    const { OpenAI } = fromRepo('openai');
    const make = () => new OpenAI({ baseURL: `${MOCK}/v1`, apiKey: 'bench', maxRetries: 0 });
    return [make(), make(), `openai ${ver('openai')}`];
  }
  const Anthropic = fromRepo('@anthropic-ai/sdk').default;
  const make = () => new Anthropic({ baseURL: MOCK, apiKey: 'bench', maxRetries: 0 });
  return [make(), make(), `@anthropic-ai/sdk ${ver('@anthropic-ai/sdk')}`];
}

/** One call (or one whole stream) on a client; `per` = units per call, null = count the chunks. */
function oneUnit(sdk, unit) {
  if (sdk === 'openai' && unit === 'call') {
    return [(c) => c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES }), 1];
  }
  if (sdk === 'openai') {
    const headers = { 'x-mock-chunks': String(CHUNKS) };
    const stream = async (c) => {
      let n = 0;
      const s = await c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES, stream: true }, { headers });
      for await (const _ of s) n++; // eslint-disable-line no-unused-vars
      return n;
    };
    return [stream, null];
  }
  if (unit === 'call') {
    return [(c) => c.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: MESSAGES }), 1];
  }
  throw new Error('chunk: openai only (the mock sizes chat streams only)');
}

const cpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};

/** CPU ns of the ledger's threads (the writer and the tokio threads it writes on); 0 without procfs. */
function ledgerThreadsNs() {
  let total = 0;
  let tids = [];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch (_) {
    return 0;
  }
  for (const tid of tids) {
    try {
      const name = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      if (name.startsWith('llmledger-write') || name.startsWith('tokio-')) {
        total += Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      }
    } catch (_) {
      // the thread ended meanwhile
    }
  }
  return total;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  const [sdk, unit, store] = process.argv.slice(2);
  const ll = require(path.join(REPO, 'bindings-node', 'js', 'index.cjs'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmledger-overhead-'));
  const url = store === 'sqlite' ? `sqlite:///${path.join(tmp, 'bench.db')}` : 'memory:';
  const tracker = new ll.Tracker({ store: url, spillDir: path.join(tmp, 'spill') });
  const [plain, other, sdkVer] = clients(sdk);
  const wrapped = tracker.wrap(other, { userId: 'bench' });
  const [fn, per] = oneUnit(sdk, unit);
  const units = per || (await fn(plain));
  const calls = unit === 'call' ? CALLS : Math.max(1, Math.floor(CALLS / 50));
  for (let i = 0; i < Math.max(20, calls); i++) {
    await fn(plain);
    await fn(wrapped);
  }
  await tracker.flush();
  // The caller must see the stream it asked for; a difference is reported next to the figure.
  const wrappedUnits = per || (await fn(wrapped));
  const base = [];
  const tracked = [];
  const b0 = ledgerThreadsNs();
  for (let r = 0; r < ROUNDS; r++) {
    const a = [];
    const b = [];
    for (let i = 0; i < calls; i++) {
      const t = cpuNs();
      await fn(plain);
      const t1 = cpuNs();
      await fn(wrapped);
      b.push(cpuNs() - t1);
      a.push(t1 - t);
    }
    base.push(median(a) / units);
    tracked.push(median(b) / units);
  }
  await tracker.flush();
  const bg = (ledgerThreadsNs() - b0) / (ROUNDS * calls * units);
  await tracker.close();
  const lib = `llmledger ${JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version}`;
  console.log(JSON.stringify({
    lang: 'node', lib, sdk: sdkVer, kind: 'overhead', unit, store, case: `${sdk}.${unit}.${store}`,
    calls_per_block: calls, units_per_call: units, wrapped_units_per_call: wrappedUnits,
    base_ns: base, wrapped_ns: tracked, background_ns: bg,
  }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
