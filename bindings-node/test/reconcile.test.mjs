// `tracker.reconcile()`: core's tracked-against-billed rows through the binding (the matching rules and the
// planted-difference cases are core's tests, core/tests/org_reconcile.rs). The same case as the Python suite's
// test_reconcile.py.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { CHAT_MESSAGES, makeTracker, openaiClient, startMock } from './helpers.mjs'

let mock

before(async () => {
  mock = await startMock()
})

after(() => mock.stop())

test('a tracked call with nothing billed is flagged, with exact decimal strings', async () => {
  const t = makeTracker()
  try {
    const client = t.tracker.wrap(openaiClient(mock), { userId: 'u1' })
    await client.chat.completions.create({ model: 'gpt-4o', messages: CHAT_MESSAGES })
    await client.chat.completions.create({ model: 'gpt-4o', messages: CHAT_MESSAGES })
    const today = new Date()
    // gpt-4o, mock chat usage: 100 × 2.5 + 20 × 1.25 + 45 × 10 = 725 µ$ per call, two calls.
    assert.deepEqual(await t.tracker.reconcile({ since: today, by: ['provider', 'model'] }), [
      {
        provider: 'openai',
        model: 'gpt-4o',
        tracked_usd: '0.00145',
        billed_usd: '0',
        diff_usd: '-0.00145',
        diff_pct: null,
        flagged: true,
        cause: "tracked but not billed: not yet in the provider's report, or billed to another organisation",
      },
    ])
    const before = new Date(today.getTime() - 3 * 86_400_000)
    const dayBefore = new Date(today.getTime() - 86_400_000)
    assert.deepEqual(await t.tracker.reconcile({ since: before, until: dayBefore }), [])
  } finally {
    await t.cleanup()
  }
})

test('bad queries are typed errors naming the field', async () => {
  const t = makeTracker()
  try {
    const cases = [
      [{ since: '2026-11-05', until: '2026-11-01' }, 'until'],
      [{ since: '2026-11-01', thresholdPct: -1 }, 'threshold_pct'],
      [{ since: '2026-11-01', by: ['colour'] }, 'reconcile'],
      [{ since: 'not a day' }, 'reconcile'],
    ]
    for (const [query, field] of cases) {
      await assert.rejects(t.tracker.reconcile(query), (err) => {
        assert.equal(err.code, 'invalid_value')
        assert.equal(err.field, field)
        return true
      })
    }
  } finally {
    await t.cleanup()
  }
})
