// The official `@anthropic-ai/sdk` over real HTTP to the mock provider, wrapped by a tracker.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import Anthropic, { InternalServerError } from '@anthropic-ai/sdk'

import { tokenUsage } from '../js/index.mjs'
import { anthropicClient, makeTracker, mockCase, recorder, startMock } from './helpers.mjs'

let mock
let env
let anthropic
const rec = recorder()
const seen = rec.seen

before(async () => {
  mock = await startMock()
  env = makeTracker({ onRecord: rec.onRecord })
  anthropic = env.tracker.wrap(anthropicClient(mock), { userId: 'ua', project: 'claude' })
})

after(async () => {
  await env.cleanup()
  mock.stop()
})

const MODEL = 'claude-sonnet-4-6'
const MESSAGES = [{ role: 'user', content: 'Say hello.' }]
// The mock's default Anthropic usage: input 300, cache write 100, cache read 1000, output 60.
const USAGE = { inputTokens: 300, cacheWriteTokens: 100, cacheReadTokens: 1000, outputTokens: 60 }

/** Decimal strings compared exactly (trailing zeros ignored). */
function decimal(s) {
  const [i, f = ''] = String(s).split('.')
  const frac = f.replace(/0+$/, '')
  return frac ? `${BigInt(i)}.${frac}` : `${BigInt(i)}`
}

function assertMessagesUsage(u) {
  assert.equal(u.provider, 'anthropic')
  assert.equal(u.api, 'messages')
  assert.equal(u.model, MODEL)
  assert.equal(u.input_tokens, USAGE.inputTokens)
  assert.equal(u.cache_write_tokens, USAGE.cacheWriteTokens)
  assert.equal(u.cache_read_tokens, USAGE.cacheReadTokens)
  assert.equal(u.output_tokens, USAGE.outputTokens)
  assert.equal(u.prompt_tokens, 1400)
  assert.equal(u.usage_source, 'reported')
  // claude-sonnet-4-6 (USD per 1M): 3.00 in, 3.75 cache write (5 m), 0.30 cache read, 15.00 out:
  // 300 × 3 + 100 × 3.75 + 1000 × 0.30 + 60 × 15 = 900 + 375 + 300 + 900 = 2475 µ$.
  assert.equal(decimal(u.cost.total), '0.002475')
  assert.equal(u.user_id, 'ua')
  assert.equal(u.project, 'claude')
}

describe('messages', () => {
  test('create', async () => {
    const m = await anthropic.messages.create({ model: MODEL, max_tokens: 100, messages: MESSAGES })
    assert.equal(m.content[0].text, 'Hello from the mock.')
    assertMessagesUsage(m._tokenUsage)
    assert.equal(Object.keys(m).includes('_tokenUsage'), false)
  })

  test('the wrapped client is still an Anthropic client', () => {
    assert.ok(anthropic instanceof Anthropic)
    assert.equal(anthropic.baseURL, mock.url)
  })

  test('create with stream: true', async () => {
    const stream = await anthropic.messages.create({ model: MODEL, max_tokens: 100, messages: MESSAGES, stream: true })
    const types = []
    for await (const ev of stream) types.push(ev.type)
    assert.equal(types[0], 'message_start')
    assert.equal(types.at(-1), 'message_stop')
    assert.deepEqual(types, [
      'message_start',
      'content_block_start',
      ...Array(5).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ])
    assertMessagesUsage(stream._tokenUsage)
  })

  test('stream() helper: events, finalMessage(), recorded once', async () => {
    const before = seen.length
    const runner = anthropic.messages.stream({ model: MODEL, max_tokens: 100, messages: MESSAGES })
    let text = ''
    runner.on('text', (delta) => {
      text += delta
    })
    const final = await runner.finalMessage()
    assert.equal(final.content[0].text, 'Hello from the mock.')
    assert.equal(text, 'Hello from the mock.')
    assert.equal(final.usage.output_tokens, 60)
    assert.equal(seen.length - before, 1)
    assertMessagesUsage(seen.at(-1))
    assertMessagesUsage(tokenUsage(runner))
  })

  test('stream() aborted: recorded, flagged', async () => {
    const before = seen.length
    const runner = anthropic.messages.stream(
      { model: MODEL, max_tokens: 100, messages: MESSAGES },
      { headers: { 'x-mock-chunk-delay': '0.02' } },
    )
    runner.on('streamEvent', (ev) => {
      if (ev.type === 'content_block_delta') runner.abort()
    })
    await assert.rejects(runner.finalMessage())
    await rec.count(before + 1)
    assert.equal(seen.length - before, 1)
    const u = seen.at(-1)
    assert.ok(u.flags.includes('stream_aborted'))
    // message_start reported the input side: the output is the estimated part.
    assert.equal(u.input_tokens, USAGE.inputTokens)
    assert.equal(u.usage_source, 'partial')
  })

  test('stream ended by an error event: rethrown, recorded as aborted', async () => {
    const stream = await anthropic.messages.create(
      { model: MODEL, max_tokens: 100, messages: MESSAGES, stream: true },
      mockCase('sse_error'),
    )
    await assert.rejects(async () => {
      for await (const _ of stream);
    })
    assert.ok(stream._tokenUsage.flags.includes('stream_aborted'))
  })

  test('provider error: failed event, same error class', async () => {
    const before = seen.length
    const err = await anthropic.messages
      .create({ model: MODEL, max_tokens: 100, messages: MESSAGES }, mockCase('status_500'))
      .catch((e) => e)
    assert.ok(err instanceof InternalServerError)
    assert.equal(seen.length - before, 1)
    assert.equal(seen.at(-1).success, false)
    assert.equal(seen.at(-1).error_class, 'InternalServerError')
  })

  test('countTokens passes through untracked', async () => {
    const before = seen.length
    const r = await anthropic.messages.countTokens({ model: MODEL, messages: MESSAGES })
    assert.equal(r.input_tokens, 42)
    assert.equal(seen.length, before)
  })
})

describe('beta.messages', () => {
  test('create', async () => {
    const m = await anthropic.beta.messages.create({ model: MODEL, max_tokens: 100, messages: MESSAGES })
    assertMessagesUsage(m._tokenUsage)
  })

  test('stream(): recorded once', async () => {
    const before = seen.length
    const runner = anthropic.beta.messages.stream({ model: MODEL, max_tokens: 100, messages: MESSAGES })
    const final = await runner.finalMessage()
    assert.equal(final.content[0].text, 'Hello from the mock.')
    assert.equal(seen.length - before, 1)
    assertMessagesUsage(seen.at(-1))
    assertMessagesUsage(tokenUsage(runner))
  })

  test('countTokens passes through untracked', async () => {
    const before = seen.length
    const r = await anthropic.beta.messages.countTokens({ model: MODEL, messages: MESSAGES })
    assert.equal(r.input_tokens, 42)
    assert.equal(seen.length, before)
  })
})
