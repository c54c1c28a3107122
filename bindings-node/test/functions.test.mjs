// countTokens, estimate and cost: the free functions over the embedded prices.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { countTokens, countTokensDetailed, cost, estimate } from '../js/index.mjs'

test('countTokens counts text with the model encoding', () => {
  // o200k_base: "Hello, world!" is 4 tokens.
  assert.equal(countTokens('Hello, world!', 'gpt-4o'), 4)
  assert.equal(countTokens('', 'gpt-4o'), 0)
  const d = countTokensDetailed('Hello, world!', 'gpt-4o')
  assert.deepEqual(d, { tokens: 4, exact: true })
})

test('countTokens counts a chat with per-message overhead', () => {
  const messages = [{ role: 'user', content: 'Hello, world!' }]
  const n = countTokens(messages, 'gpt-4o')
  assert.ok(n > 4, `chat overhead is counted (got ${n})`)
})

test('estimate: a chat request with a bounded output', () => {
  const messages = Array.from({ length: 20 }, (_, i) => ({
    role: i % 2 ? 'assistant' : 'user',
    content: `Message number ${i} with some words in it.`,
  }))
  const e = estimate({ model: 'gpt-4o', messages, maxOutputTokens: 500 })
  assert.equal(e.model, 'gpt-4o')
  assert.equal(e.inputTokens, countTokens(messages, 'gpt-4o'))
  assert.equal(e.maxOutputTokens, 500)
  assert.equal(e.currency, 'USD')
  assert.equal(e.minCost.exact, e.inputCost.exact)
  const maxWithOutput = cost({ model: 'gpt-4o', inputTokens: e.inputTokens, outputTokens: 500 })
  assert.equal(e.maxCost.exact, maxWithOutput.exact)
})

test('cost: exact decimal string plus a convenience number', () => {
  const c = cost({ model: 'gpt-4o', inputTokens: 1_000_000, outputTokens: 1_000_000 })
  assert.equal(c.currency, 'USD')
  assert.equal(typeof c.exact, 'string')
  assert.equal(c.amount, Number(c.exact))
  assert.equal(c.usd, c.exact)
  assert.ok(c.breakdown.input && c.breakdown.output)
  const parts = cost({ model: 'gpt-4o', inputTokens: 1_000_000 }).exact
  assert.equal(c.breakdown.input, parts)
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
