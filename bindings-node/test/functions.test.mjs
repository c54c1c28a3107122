// countTokens, estimate and cost: the free functions over the embedded prices.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { Tracker, countTokens, countTokensDetailed, cost, estimate } from '../js/index.mjs'

/** Decimal strings compared exactly (trailing zeros ignored). */
function decimal(s) {
  const [i, f = ''] = String(s).split('.')
  const frac = f.replace(/0+$/, '')
  return frac ? `${BigInt(i)}.${frac}` : `${BigInt(i)}`
}

test('countTokens counts text with the model encoding', () => {
  // o200k_base: "Hello, world!" is 4 tokens.
  assert.equal(countTokens('Hello, world!', 'gpt-4o'), 4)
  assert.equal(countTokens('', 'gpt-4o'), 0)
  const d = countTokensDetailed('Hello, world!', 'gpt-4o')
  assert.deepEqual(d, { tokens: 4, exact: true })
})

test('countTokens counts a chat with per-message overhead', () => {
  const messages = [{ role: 'user', content: 'Hello, world!' }]
  // 3 per message + "user" (1) + "Hello, world!" (4) + 3 to prime the reply = 11.
  assert.equal(countTokens(messages, 'gpt-4o'), 11)
})

test('estimate: a chat request with a bounded output', () => {
  const messages = Array.from({ length: 20 }, (_, i) => ({
    role: i % 2 ? 'assistant' : 'user',
    content: `Message number ${i} with some words in it.`,
  }))
  const e = estimate({ model: 'gpt-4o', messages, maxOutputTokens: 500 })
  assert.equal(e.model, 'gpt-4o')
  // Each message: 3 + role (1) + "Message number N with some words in it." (10: digits are split from the
  // space before them; gpt-tokenizer agrees) = 14; 20 × 14 + 3 = 283.
  assert.equal(e.inputTokens, 283)
  assert.equal(e.maxOutputTokens, 500)
  assert.equal(e.currency, 'USD')
  // gpt-4o 2.50 in / 10.00 out per 1M: 283 × 2.50 = 707.5 µ$; + 500 × 10 = 5707.5 µ$.
  assert.equal(decimal(e.minCost.exact), '0.0007075')
  assert.equal(e.minCost.exact, e.inputCost.exact)
  assert.equal(decimal(e.maxCost.exact), '0.0057075')
})

test('cost: exact decimal string plus a convenience number', () => {
  const c = cost({ model: 'gpt-4o', inputTokens: 1_000_000, outputTokens: 1_000_000 })
  assert.equal(c.currency, 'USD')
  assert.equal(typeof c.exact, 'string')
  assert.equal(c.amount, Number(c.exact))
  assert.equal(c.usd, c.exact)
  // gpt-4o: 1M × 2.50 + 1M × 10.00 per 1M.
  assert.equal(decimal(c.exact), '12.5')
  assert.equal(decimal(c.breakdown.input), '2.5')
  assert.equal(decimal(c.breakdown.output), '10')
})

test('cost: errors carry a stable code, field and value', () => {
  assert.throws(
    () => cost({ model: 'no-such-model-xyz', inputTokens: 1 }),
    (e) => e instanceof Error && e.code === 'unknown_model' && e.field === 'model' && e.value === 'no-such-model-xyz',
  )
  assert.throws(
    () => cost({ model: 'gpt-4o', inputTokens: -1 }),
    (e) => e.code === 'invalid_value' && e.field === 'inputTokens',
  )
  assert.throws(
    () => cost({ model: 'gpt-4o', inputTokens: 1.5 }),
    (e) => e.code === 'invalid_value',
  )
})

test('cost: a converted cost that overflows is a typed error, naming the rate', () => {
  // 10^15 tokens × 2.50 / 1M = 2.5 billion USD; × 7.9 × 10^28 overflows a 96-bit decimal.
  const tracker = new Tracker({ store: 'memory://', currency: 'KRW', rates: { KRW: '79228162514264337593543950335' } })
  try {
    assert.throws(
      () => tracker.cost({ model: 'gpt-4o', inputTokens: 1e15 }),
      (e) => e.code === 'invalid_value' && e.field === 'rates.KRW',
    )
    // The largest safe integer still prices exactly: (2^53 - 1) × 2.50 / 1M.
    assert.equal(decimal(cost({ model: 'gpt-4o', inputTokens: Number.MAX_SAFE_INTEGER }).exact), '22517998136.8524775')
  } finally {
    tracker.close()
  }
})
