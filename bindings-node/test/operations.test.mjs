// What an operator sees: health(), the spill directory, one warning (not one per event) when the store cannot be
// reached, credentials redacted everywhere, and typed errors for bad numeric arguments. The outage is real: a
// PostgreSQL URL on a loopback port nobody listens on. (The stop/start of a real PostgreSQL and the recovery
// notice are covered by the Python suite and core/tests/ledger_outage.rs, which may stop the shared server; node
// runs test files in parallel.)
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import { Tracker, cost, estimate } from '../js/index.mjs'
import { CHAT_MESSAGES, makeTracker, openaiClient, startMock } from './helpers.mjs'

let mock
before(async () => {
  mock = await startMock()
})
after(() => mock.stop())

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** Polls `check` until it is true; fails after `ms`. */
async function eventually(what, check, ms = 20_000) {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

test('cost() and estimate(): every count is checked, with a typed error naming the field', () => {
  for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 53, '3']) {
    assert.throws(
      () => cost({ model: 'gpt-4o', inputTokens: 10, outputTokens: bad }),
      (e) => e.code === 'invalid_value' && e.field === 'outputTokens',
      `outputTokens = ${bad}`,
    )
  }
  assert.throws(
    () => estimate({ model: 'gpt-4o', messages: CHAT_MESSAGES, maxOutputTokens: -5 }),
    (e) => e.code === 'invalid_value' && e.field === 'maxOutputTokens' && e.value === '-5',
  )
})

test('record(): latencyMs is checked like every count', async () => {
  const t = makeTracker()
  try {
    const response = { id: 'chatcmpl-lat', model: 'gpt-4o', usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 } }
    for (const bad of [-1, 2.5, 'slow']) {
      assert.throws(
        () => t.tracker.record({ provider: 'openai', api: 'chat_completions', model: 'gpt-4o', response, latencyMs: bad }),
        (e) => e.code === 'invalid_value' && e.field === 'latencyMs',
        `latencyMs = ${bad}`,
      )
    }
    const ok = t.tracker.record({ provider: 'openai', api: 'chat_completions', model: 'gpt-4o', response, latencyMs: 120 })
    assert.equal(ok.latency_ms, 120)
  } finally {
    await t.cleanup()
  }
})

test('health() of a healthy SQLite ledger, with its spill directory', async () => {
  const spillDir = mkdtempSync(join(tmpdir(), 'llmledger-spill-'))
  const t = makeTracker({ spillDir })
  try {
    const client = t.tracker.wrap(openaiClient(mock), { userId: 'ops' })
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'gpt-4o', messages: CHAT_MESSAGES })
    await t.tracker.flush()
    const h = t.tracker.health()
    assert.equal(h.store_state, 'up')
    assert.deepEqual(
      [h.recorded_events, h.written_events, h.queued_events, h.spilled_events],
      [3, 3, 0, 0],
    )
    assert.equal(h.spill_dir, spillDir)
    assert.equal(h.last_error, null)
    assert.deepEqual(t.warnings, [])
  } finally {
    await t.cleanup()
  }
  assert.deepEqual(readdirSync(spillDir), [], 'an idle ledger leaves no journal behind')
  rmSync(spillDir, { recursive: true, force: true })
})

test('an unreachable PostgreSQL: one redacted warning, calls untouched, every event kept in the spill', async () => {
  const spillDir = mkdtempSync(join(tmpdir(), 'llmledger-state-'))
  const notices = []
  const errors = []
  const tracker = new Tracker({
    store: `postgres://ops:hunter2@127.0.0.1:${await freePort()}/ledger`,
    spillDir,
    onNotice: (n) => notices.push(n),
    onError: (err, info) => errors.push({ err, info }),
  })
  try {
    await eventually('the start-up warning', () => tracker.health() && notices.length > 0)
    assert.equal(notices[0].kind, 'store_unreachable')
    assert.equal(notices[0].level, 'warning')
    assert.ok(!notices[0].message.includes('hunter2') && notices[0].message.includes('ops:***@127.0.0.1'), notices[0].message)
    assert.ok(notices[0].message.includes(spillDir), notices[0].message)
    assert.equal(errors.length, 1, 'a warning also reaches onError')
    assert.equal(errors[0].info.operation, 'ledger')
    assert.equal(errors[0].err.code, 'store')

    const client = tracker.wrap(openaiClient(mock), { userId: 'ops' })
    for (let i = 0; i < 5; i++) {
      const r = await client.chat.completions.create({ model: 'gpt-4o', messages: CHAT_MESSAGES })
      assert.ok(r.choices[0].message.content, 'the call itself is untouched')
    }
    await assert.rejects(tracker.flush(), (e) => e.code === 'store' && e.field === 'spill_dir')
    const h = tracker.health()
    assert.equal(h.store_state, 'down')
    assert.equal(h.spilled_events, 5)
    assert.equal(h.queued_events, 0)
    assert.ok(!h.store.includes('hunter2') && !(h.last_error || '').includes('hunter2'))
    assert.notEqual(h.oldest_spilled_age_secs, null)
    // One warning from the ledger, and one from spend control (an unreachable store counts as active, so
    // each call's check is tried and the call goes ahead): not one per event, per call or per flush.
    assert.deepEqual(
      notices.map((n) => n.kind),
      ['store_unreachable', 'spend_store_failed'],
      'one warning each, not one per event or per flush',
    )
    assert.ok(!notices[1].message.includes('hunter2'), notices[1].message)
  } finally {
    await assert.rejects(tracker.close(), (e) => e.code === 'store')
  }
  assert.ok(readdirSync(spillDir).some((f) => f.endsWith('.jsonl')), 'the spill outlives the tracker')
  rmSync(spillDir, { recursive: true, force: true })
})

test("record(): the same hook as wrapped calls — onRecord fires, unknownModel: 'error' reports the unpriced call", async () => {
  const seen = []
  const t = makeTracker({ unknownModel: 'error', onRecord: (u) => seen.push(u) })
  try {
    const response = { id: 'chatcmpl-hook', model: 'gpt-9-unknown', usage: { prompt_tokens: 7, completion_tokens: 1, total_tokens: 8 } }
    const u = t.tracker.record({ provider: 'openai', api: 'chat_completions', model: 'gpt-9-unknown', response })
    assert.equal(u.cost, null)
    assert.equal(u.pricing_error.code, 'unknown_model')
    assert.equal(seen.length, 1)
    assert.equal(seen[0].input_tokens, 7)
    assert.deepEqual(
      t.warnings.map((w) => [w.info.operation, w.err.code]),
      [['price', 'unknown_model']],
    )
  } finally {
    await t.cleanup()
  }
})
