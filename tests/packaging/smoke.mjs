// Smoke test of the installed npm packages, ESM (see smoke.cjs): the named and default imports are the
// CommonJS entry's instance, and a price through them.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

import llmledger, { Tracker, cost, countTokens, estimate, tokenUsage } from 'llmledger'

const cjs = createRequire(import.meta.url)('llmledger')
assert.equal(llmledger, cjs)
assert.equal(Tracker, cjs.Tracker)
for (const f of [cost, countTokens, estimate, tokenUsage]) assert.equal(typeof f, 'function')
// gpt-4o: 1M input × $2.50 + 1M output × $10.00 = $12.50.
assert.match(cost({ model: 'gpt-4o', inputTokens: 1_000_000, outputTokens: 1_000_000 }).exact, /^12\.50*$/)
console.log('node smoke (ESM): import OK')
