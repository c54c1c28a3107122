// Smoke test of the installed npm packages, CommonJS (run by scripts/package-node.sh in a fresh folder that
// installed the packed `llmledger` and `@llmledger/<platform>` tarballs, with no cargo on PATH): the require,
// the native module's origin, a price, and the official openai SDK wrapped against the mock provider
// (URL in argv[2]) with a SQLite ledger. Expected values are hand-computed from pricing/data/openai.json.
'use strict'
const assert = require('node:assert/strict')
const { mkdtempSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

const OpenAI = require('openai')
const { Tracker, cost } = require('llmledger')

// Both packages came from the tarballs: the JS from node_modules/llmledger, the native module from the
// platform package (no local build is asked for).
assert.match(require.resolve('llmledger'), /node_modules[/\\]llmledger[/\\]/)
assert.equal(process.env.LLMLEDGER_NATIVE, undefined)
const platform = Object.keys(require('llmledger/package.json').optionalDependencies).find((name) =>
  Object.keys(require.cache).some((p) => p.includes(join('node_modules', name))),
)
assert.ok(platform, 'the native module was not loaded from a platform package')

// Exact decimals may carry trailing zeros; compare their canonical form.
const decimal = (s) => String(s).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '')

async function main() {
  // gpt-4o: $2.50 / 1M input, $10.00 / 1M output: 1,000 × 2.5 + 500 × 10 = 7,500 µ$.
  assert.equal(decimal(cost({ model: 'gpt-4o', inputTokens: 1000, outputTokens: 500 }).exact), '0.0075')

  const tracker = new Tracker({ store: `sqlite://${join(mkdtempSync(join(tmpdir(), 'llmledger-smoke-')), 'ledger.db')}` })
  const client = tracker.wrap(new OpenAI({ baseURL: `${process.argv[2]}/v1`, apiKey: 'test', maxRetries: 0 }), {
    userId: 'smoke',
  })
  const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
  // Mock chat usage: prompt 120 (20 cached), completion 45 → 100 × 2.5 + 20 × 1.25 + 45 × 10 = 725 µ$.
  const u = r._tokenUsage
  assert.deepEqual([u.input_tokens, u.cache_read_tokens, u.output_tokens], [100, 20, 45])
  assert.equal(decimal(u.cost.total), '0.000725')
  const rows = await tracker.usage({ groupBy: ['user'] })
  assert.deepEqual(
    rows.map((row) => [row.user, row.requests, decimal(row.cost)]),
    [['smoke', 1, '0.000725']],
  )
  await tracker.close()
  console.log(`node smoke (CJS): require, native module from ${platform}, cost, wrapped openai call and report OK`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
