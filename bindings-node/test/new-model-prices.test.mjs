// A model that shipped today: priced through `new Tracker({ pricesPath })` or `{ litellmPricesPath }` from a
// small price file, the official SDK over HTTP to the mock, into a real SQLite ledger. A bad file is refused
// at construction with a typed error naming the file, model and field.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import { Tracker } from '../js/index.mjs'
import { CHAT_MESSAGES, makeTracker, openaiClient, startMock } from './helpers.mjs'

let mock
let dir

before(async () => {
  mock = await startMock()
  dir = mkdtempSync(join(tmpdir(), 'llmledger-node-prices-'))
})

after(() => {
  mock.stop()
  rmSync(dir, { recursive: true, force: true })
})

// Mock chat usage: prompt 120 (20 cached), completion 45.
const version = {
  effective_from: '2020-01-01',
  source: 'launch post',
  checked: '2020-01-01',
  input: '3.00',
  cache_read: '0.30',
  output: '12.00',
}
const ourFormat = (v = version) => ({
  provider: 'openai',
  models: [{ id: 'acme-brand-new', mode: 'chat', prices: [v] }],
})
// 100 × 3.00/1M + 20 × 0.30/1M + 45 × 12.00/1M = 0.0003 + 0.000006 + 0.00054
const OUR_FORMAT_COST = '0.000846'

const LITELLM = {
  'acme-litellm-new': {
    litellm_provider: 'openai',
    mode: 'chat',
    input_cost_per_token: 2e-6,
    cache_read_input_token_cost: 5e-7,
    output_cost_per_token: 8e-6,
  },
}
// 100 × 2/1M + 20 × 0.5/1M + 45 × 8/1M = 0.0002 + 0.00001 + 0.00036
const LITELLM_COST = '0.00057'

function file(name, data) {
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(data))
  return path
}

async function call(tracker, model) {
  const r = await tracker.wrap(openaiClient(mock)).chat.completions.create({ model, messages: CHAT_MESSAGES })
  return r._tokenUsage
}

describe('pricing a brand-new model from a price file', () => {
  test('a file in our format prices it (and without it the call is unpriced, never $0)', async () => {
    const without = makeTracker()
    const withFile = makeTracker({ pricesPath: file('prices.json', ourFormat()) })
    try {
      const u0 = await call(without.tracker, 'acme-brand-new')
      assert.equal(u0.cost, null)
      assert.equal(u0.pricing_error.code, 'unknown_model')
      const u = await call(withFile.tracker, 'acme-brand-new')
      assert.equal(u.cost.total, OUR_FORMAT_COST)
      assert.equal(u.resolved_model, 'acme-brand-new')
    } finally {
      await without.cleanup()
      await withFile.cleanup()
    }
  })

  test("LiteLLM's price map prices it", async () => {
    const env = makeTracker({ litellmPricesPath: file('model_prices_and_context_window.json', LITELLM) })
    try {
      const u = await call(env.tracker, 'acme-litellm-new')
      assert.equal(u.cost.total, LITELLM_COST)
    } finally {
      await env.cleanup()
    }
  })

  test('a bad file is refused naming the file, model and field', () => {
    const bad = file('bad-prices.json', ourFormat({ ...version, output: '-12.00' }))
    assert.throws(
      () => new Tracker({ store: 'memory://', pricesPath: bad }),
      (e) =>
        e.code === 'invalid_price_data' &&
        e.message.includes('bad-prices.json') &&
        e.message.includes('negative: openai: acme-brand-new: prices[0].output = -12.00'),
    )
    const { output: _dropped, ...noOutput } = version
    const missing = file('missing-output.json', ourFormat(noOutput))
    assert.throws(
      () => new Tracker({ store: 'memory://', pricesPath: missing }),
      (e) => e.code === 'invalid_price_data' && e.message.includes('mode: openai: acme-brand-new'),
    )
  })
})
