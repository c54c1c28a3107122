// The official `openai` SDK over real HTTP to the mock provider, wrapped by a tracker on a SQLite ledger.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import OpenAI, { APIConnectionError, RateLimitError } from 'openai'
import { Stream } from 'openai/streaming'

import { tokenUsage } from '../js/index.mjs'
import { CHAT_MESSAGES, makeTracker, mockCase, openaiClient, recorder, startMock, withTimeout } from './helpers.mjs'

let mock
let env
let openai
// Every call recorded by `env` (helpers' requests are checked here: a helper's runner has no `_tokenUsage`).
const records = recorder()

before(async () => {
  mock = await startMock()
  env = makeTracker({ onRecord: records.onRecord })
  openai = env.tracker.wrap(openaiClient(mock), { userId: 'u1', workspaceId: 'w1', project: 'chat' })
})

after(async () => {
  await env.cleanup()
  mock.stop()
})

// The mock's default usage (tests/mock_provider/README.md), as the core normalizes it.
const CHAT = { inputTokens: 100, cacheReadTokens: 20, outputTokens: 45 }
const RESPONSES = { inputTokens: 150, cacheReadTokens: 50, outputTokens: 80, reasoningTokens: 30 }

// Hand-computed from the list prices (USD per 1M tokens), never from the library's own cost().
// gpt-4o 2.50 in / 1.25 cached / 10.00 out: 100 × 2.50 + 20 × 1.25 + 45 × 10 = 725 µ$.
const CHAT_COST = { 'gpt-4o': '0.000725' }
// gpt-4o Responses: 150 × 2.50 + 50 × 1.25 + 80 × 10 = 375 + 62.5 + 800 = 1237.5 µ$.
const RESPONSES_COST = '0.0012375'

/** Decimal strings compared exactly (trailing zeros ignored). */
function decimal(s) {
  const [i, f = ''] = String(s).split('.')
  const frac = f.replace(/0+$/, '')
  return frac ? `${BigInt(i)}.${frac}` : `${BigInt(i)}`
}

function assertChatUsage(u, model = 'gpt-4o') {
  assert.equal(u.provider, 'openai')
  assert.equal(u.api, 'chat_completions')
  assert.equal(u.model, model)
  assert.equal(u.input_tokens, CHAT.inputTokens)
  assert.equal(u.cache_read_tokens, CHAT.cacheReadTokens)
  assert.equal(u.output_tokens, CHAT.outputTokens)
  assert.equal(u.total_tokens, 165)
  assert.equal(u.usage_source, 'reported')
  assert.equal(u.estimated, false)
  assert.equal(u.success, true)
  assert.equal(u.cost.currency, 'USD')
  assert.equal(decimal(u.cost.total), CHAT_COST[model])
}

describe('chat.completions', () => {
  test('create: result is the SDK object with a non-enumerable _tokenUsage', async () => {
    const r = await openai.chat.completions.create({ model: 'gpt-4o', messages: CHAT_MESSAGES })
    assert.equal(r.object, 'chat.completion')
    assert.equal(r.choices[0].message.content, 'Hello from the mock.')
    assertChatUsage(r._tokenUsage)
    assert.equal(r._tokenUsage.user_id, 'u1')
    assert.equal(r._tokenUsage.workspace_id, 'w1')
    assert.equal(r._tokenUsage.project, 'chat')
    assert.ok(r._tokenUsage.latency_ms >= 0)
    assert.equal(Object.keys(r).includes('_tokenUsage'), false)
    assert.equal(JSON.stringify(r).includes('_tokenUsage'), false)
    assert.equal(r._request_id, 'req_mock_1')
  })

  test('the wrapped client is a tracked copy of the same class; the caller\'s client is untouched', async () => {
    assert.ok(openai instanceof OpenAI)
    assert.equal(openai.baseURL, `${mock.url}/v1`)
    assert.equal(openai.apiKey, 'test')
    assert.equal(typeof openai.models.list, 'function')
    const rec = recorder()
    const e2 = makeTracker({ onRecord: rec.onRecord })
    try {
      const original = openaiClient(mock)
      const tracked = e2.tracker.wrap(original)
      assert.notEqual(tracked, original)
      const r = await original.chat.completions.create({ model: 'gpt-4o', messages: CHAT_MESSAGES })
      assert.equal(r._tokenUsage, undefined, 'calls through the caller\'s own client are not tracked')
      await tracked.chat.completions.create({ model: 'gpt-4o', messages: CHAT_MESSAGES })
      assert.equal(rec.seen.length, 1)
    } finally {
      await e2.cleanup()
    }
  })

  test('withResponse() and asResponse() keep working and are recorded once', async () => {
    const rec = recorder()
    const e2 = makeTracker({ onRecord: rec.onRecord })
    const tracked = e2.tracker.wrap(openaiClient(mock), { userId: 'u-raw' })
    const { data, response, request_id } = await tracked.chat.completions
      .create({ model: 'gpt-4o', messages: CHAT_MESSAGES })
      .withResponse()
    assert.equal(response.status, 200)
    assert.equal(request_id, 'req_mock_1')
    assertChatUsage(data._tokenUsage)

    const raw = await tracked.chat.completions.create({ model: 'gpt-4o', messages: CHAT_MESSAGES }).asResponse()
    assert.ok(raw instanceof Response)
    const body = await raw.json()
    assert.equal(body.usage.prompt_tokens, 120)
    // The raw body is recorded from a clone, in the background: wait for that record (bounded).
    try {
      await rec.count(2)
      const rows = await e2.tracker.usage({ userId: 'u-raw' })
      assert.equal(rows[0].requests, 2)
      assert.equal(rows[0].input_tokens, 2 * CHAT.inputTokens)
      assert.equal(rec.seen.length, 2, 'recorded once per call')
    } finally {
      await e2.cleanup()
    }
  })

  test('asResponse() of a stream: the raw SSE is recorded from a clone', async () => {
    const rec = recorder()
    const seen = rec.seen
    const e2 = makeTracker({ onRecord: rec.onRecord })
    try {
      const client = e2.tracker.wrap(openaiClient(mock))
      const raw = await client.chat.completions
        .create({ model: 'gpt-4o', messages: CHAT_MESSAGES, stream: true })
        .asResponse()
      const text = await raw.text()
      assert.ok(text.includes('data: [DONE]'))
      await rec.count(1)
      assert.equal(seen.length, 1)
      assertChatUsage(seen[0])
    } finally {
      await e2.cleanup()
    }
  })

  test('parse() is recorded once', async () => {
    const r = await openai.chat.completions.parse({ model: 'gpt-4o', messages: CHAT_MESSAGES })
    assert.equal(r.choices[0].message.parsed, null)
    assertChatUsage(r._tokenUsage)
  })

  test('stream: include_usage injected, the usage-only chunk hidden, usage recorded', async () => {
    await mock.clearRequests()
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages: CHAT_MESSAGES, stream: true })
    assert.ok(stream instanceof Stream)
    let text = ''
    let chunks = 0
    for await (const chunk of stream) {
      chunks++
      assert.ok(chunk.choices.length > 0, 'the usage-only chunk must be hidden')
      text += chunk.choices[0].delta.content ?? ''
    }
    assert.equal(text, 'Hello from the mock.')
    assert.equal(chunks, 7)
    const [req] = await mock.requests()
    assert.deepEqual(req.body.stream_options, { include_usage: true })
    assertChatUsage(stream._tokenUsage)
  })

  test('stream: a caller who asked for usage sees the usage chunk', async () => {
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: CHAT_MESSAGES,
      stream: true,
      stream_options: { include_usage: true },
    })
    let last
    for await (const chunk of stream) last = chunk
    assert.deepEqual(last.choices, [])
    assert.equal(last.usage.prompt_tokens, 120)
    assertChatUsage(stream._tokenUsage)
  })

  test('stream: an explicit include_usage: false is overridden, the chunk hidden, the bill exact', async () => {
    await mock.clearRequests()
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: CHAT_MESSAGES,
      stream: true,
      stream_options: { include_usage: false },
    })
    for await (const chunk of stream) assert.ok(chunk.choices.length > 0, 'the usage-only chunk must be hidden')
    const [req] = await mock.requests()
    assert.deepEqual(req.body.stream_options, { include_usage: true })
    assertChatUsage(stream._tokenUsage)
  })

  test('stream: the caller does not get its body mutated', async () => {
    const body = { model: 'gpt-4o', messages: CHAT_MESSAGES, stream: true }
    const stream = await openai.chat.completions.create(body)
    for await (const _ of stream);
    assert.equal('stream_options' in body, false)
  })

  test('stream abandoned with break before its usage arrived: recorded, flagged aborted', async () => {
    // Core reads the body as it arrives, ahead of the caller: the mock spaces its events so that the
    // usage chunk has not arrived when the caller breaks off (once it has, the usage is exact).
    const stream = await openai.chat.completions.create(
      { model: 'gpt-4o', messages: CHAT_MESSAGES, stream: true },
      { headers: { 'x-mock-chunk-delay': '0.05' } },
    )
    for await (const _ of stream) break
    const u = stream._tokenUsage
    assert.ok(u, 'a broken-off stream is recorded at once')
    assert.ok(u.flags.includes('stream_aborted'))
    assert.notEqual(u.usage_source, 'reported')
    assert.equal(u.estimated, true)
    assert.ok(u.input_tokens > 0, 'the prompt is estimated locally')
  })

  test('a stream never iterated is recorded as abandoned once garbage-collected', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc')
    const rec = recorder()
    const seen = rec.seen
    const e2 = makeTracker({ onRecord: rec.onRecord })
    try {
      const client = e2.tracker.wrap(openaiClient(mock), { userId: 'u-gc' })
      await (async () => {
        const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: CHAT_MESSAGES, stream: true })
        assert.ok(stream instanceof Stream)
      })()
      // When the finalizer runs is up to V8: collect until the record arrives (an event), bounded at 10 s.
      const recorded = rec.count(1)
      let done = false
      recorded.then(() => (done = true), () => (done = true))
      while (!done) {
        gc()
        await Promise.race([recorded.catch(() => {}), new Promise((r) => setImmediate(r))])
      }
      await recorded
      assert.equal(seen.length, 1)
      assert.equal(seen[0].user_id, 'u-gc')
      assert.ok(seen[0].flags.includes('stream_aborted'))
      assert.ok(seen[0].input_tokens > 0, 'the prompt is estimated')
    } finally {
      await e2.cleanup()
    }
  })

  test('stream aborted with controller.abort(): recorded, flagged aborted', async () => {
    const stream = await openai.chat.completions.create(
      { model: 'gpt-4o', messages: CHAT_MESSAGES, stream: true },
      { headers: { 'x-mock-chunk-delay': '0.02' } },
    )
    let n = 0
    for await (const _ of stream) {
      if (++n === 2) stream.controller.abort()
    }
    assert.ok(stream._tokenUsage.flags.includes('stream_aborted'))
    assert.equal(stream._tokenUsage.estimated, true)
  })

  test('stream ended by a provider error event: the error is rethrown, usage recorded as aborted', async () => {
    const stream = await openai.chat.completions.create(
      { model: 'gpt-4o', messages: CHAT_MESSAGES, stream: true },
      mockCase('sse_error'),
    )
    await assert.rejects(async () => {
      for await (const _ of stream);
    }, /mock stream error/)
    assert.ok(stream._tokenUsage.flags.includes('stream_aborted'))
  })

  test('stream cut by a disconnect: recorded without reported usage', async () => {
    const stream = await openai.chat.completions.create(
      { model: 'gpt-4o', messages: CHAT_MESSAGES, stream: true },
      mockCase('disconnect'),
    )
    let err = null
    try {
      for await (const _ of stream);
    } catch (e) {
      err = e
    }
    // undici may or may not surface the cut; if it does, it is the transport's error, never one of ours.
    assert.ok(err === null || !('field' in err), `tracking leaked an error: ${err}`)
    assert.ok(stream._tokenUsage)
    assert.equal(stream._tokenUsage.estimated, true)
  })

  test('stream from a server that ignores include_usage: estimated, flagged', async () => {
    const stream = await openai.chat.completions.create(
      { model: 'gpt-4o', messages: CHAT_MESSAGES, stream: true },
      mockCase('no_usage'),
    )
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
    assert.equal(text, 'Hello from the mock.')
    const u = stream._tokenUsage
    assert.equal(u.estimated, true)
    assert.ok(u.flags.includes('stream_without_usage'))
    assert.ok(u.input_tokens > 0)
    assert.ok(u.output_tokens > 0)
  })

  test('provider error: recorded as a failed event and rethrown unchanged', async () => {
    const failures = []
    const e2 = makeTracker({ onRecord: (u) => failures.push(u) })
    try {
      const client = e2.tracker.wrap(openaiClient(mock), { userId: 'u-err' })
      const err = await client.chat.completions
        .create({ model: 'gpt-4o', messages: CHAT_MESSAGES }, mockCase('status_429'))
        .then(
          () => assert.fail('must reject'),
          (e) => e,
        )
      assert.ok(err instanceof RateLimitError)
      assert.equal(err.status, 429)
      assert.equal(failures.length, 1)
      assert.equal(failures[0].success, false)
      assert.equal(failures[0].error_class, 'RateLimitError')
      const [row] = await e2.tracker.usage({ userId: 'u-err' })
      assert.equal(row.requests, 1)
      assert.equal(row.failed, 1)
      assert.equal(row.cost, '0')
    } finally {
      await e2.cleanup()
    }
  })

  test('connection error: recorded as failed, rethrown', async () => {
    const failures = []
    const e2 = makeTracker({ onRecord: (u) => failures.push(u) })
    try {
      const client = e2.tracker.wrap(new OpenAI({ baseURL: 'http://127.0.0.1:9/v1', apiKey: 't', maxRetries: 0 }))
      await assert.rejects(
        client.chat.completions.create({ model: 'gpt-4o', messages: CHAT_MESSAGES }),
        (e) => e instanceof APIConnectionError,
      )
      assert.equal(failures.length, 1)
      assert.equal(failures[0].error_class, 'APIConnectionError')
    } finally {
      await e2.cleanup()
    }
  })

  test('request options (headers, signal, timeout) pass through', async () => {
    await mock.clearRequests()
    const controller = new AbortController()
    await openai.chat.completions.create(
      { model: 'gpt-4o', messages: CHAT_MESSAGES },
      { headers: { 'x-custom': 'yes' }, signal: controller.signal, timeout: 5000 },
    )
    const [req] = await mock.requests()
    assert.equal(req.headers['x-custom'], 'yes')
  })

  test('stream() helper: events and final completion; recorded once with the hidden usage chunk', async () => {
    const seen = []
    const e2 = makeTracker({ onRecord: (u) => seen.push(u) })
    try {
      const client = e2.tracker.wrap(openaiClient(mock))
      const runner = client.chat.completions.stream({ model: 'gpt-4o', messages: CHAT_MESSAGES })
      let text = ''
      runner.on('content', (delta) => {
        text += delta
      })
      const final = await runner.finalChatCompletion()
      assert.equal(final.choices[0].message.content, 'Hello from the mock.')
      assert.equal(text, 'Hello from the mock.')
      assert.equal(seen.length, 1)
      assertChatUsage(seen[0])
      assert.deepEqual(tokenUsage(runner), seen[0], "tokenUsage(runner): its request's record")
    } finally {
      await e2.cleanup()
    }
  })

  test('runTools(): every request of the loop is recorded', async () => {
    const seen = []
    const e2 = makeTracker({ onRecord: (u) => seen.push(u) })
    try {
      const client = e2.tracker.wrap(openaiClient(mock))
      const runner = client.chat.completions.runTools({
        model: 'gpt-4o',
        messages: CHAT_MESSAGES,
        tools: [
          {
            type: 'function',
            function: { name: 'noop', parameters: { type: 'object', properties: {} }, function: () => 'ok' },
          },
        ],
      })
      const content = await runner.finalContent()
      assert.equal(content, 'Hello from the mock.')
      assert.equal(seen.length, 1)
      assertChatUsage(seen[0])
      assert.deepEqual(tokenUsage(runner), seen[0], "tokenUsage(runner): its last request's record")
    } finally {
      await e2.cleanup()
    }
  })
})

describe('responses', () => {
  function assertResponsesUsage(u) {
    assert.equal(u.api, 'responses')
    assert.equal(u.input_tokens, RESPONSES.inputTokens)
    assert.equal(u.cache_read_tokens, RESPONSES.cacheReadTokens)
    assert.equal(u.output_tokens, RESPONSES.outputTokens)
    assert.equal(u.reasoning_tokens, RESPONSES.reasoningTokens)
    assert.equal(decimal(u.cost.total), RESPONSES_COST)
  }

  test('create', async () => {
    const r = await openai.responses.create({ model: 'gpt-4o', input: 'Say hello.' })
    assert.equal(r.output_text, 'Hello from the mock.')
    assertResponsesUsage(r._tokenUsage)
  })

  test('create with stream: true', async () => {
    const stream = await openai.responses.create({ model: 'gpt-4o', input: 'Say hello.', stream: true })
    const types = []
    for await (const ev of stream) types.push(ev.type)
    assert.equal(types.at(-1), 'response.completed')
    assertResponsesUsage(stream._tokenUsage)
  })

  test('stream() helper: recorded once', async () => {
    const before = records.seen.length
    const runner = openai.responses.stream({ model: 'gpt-4o', input: 'Say hello.' })
    const final = await runner.finalResponse()
    assert.equal(final.output_text, 'Hello from the mock.')
    assert.equal(records.seen.length - before, 1)
    assertResponsesUsage(records.seen.at(-1))
    assertResponsesUsage(tokenUsage(runner))
  })

  test('parse()', async () => {
    const r = await openai.responses.parse({ model: 'gpt-4o', input: 'Say hello.' })
    assertResponsesUsage(r._tokenUsage)
  })
})

describe('other endpoints', () => {
  test('embeddings.create', async () => {
    const r = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] })
    assert.equal(r.data.length, 2)
    const u = r._tokenUsage
    assert.equal(u.api, 'embeddings')
    assert.equal(u.input_tokens, 16)
    assert.equal(u.output_tokens, 0)
    // text-embedding-3-small 0.02 per 1M: 16 × 0.02 = 0.32 µ$.
    assert.equal(decimal(u.cost.total), '0.00000032')
  })

  test('images.generate (token-priced gpt-image-1)', async () => {
    const r = await openai.images.generate({ model: 'gpt-image-1', prompt: 'a cat', n: 1, size: '1024x1024' })
    assert.equal(r.data.length, 1)
    const u = r._tokenUsage
    assert.equal(u.api, 'images')
    assert.equal(u.output_tokens, 4160)
    assert.equal(u.image_output_tokens, 4160)
    assert.equal(u.success, true)
  })

  test('images.generate (per-image dall-e-3)', async () => {
    const r = await openai.images.generate({ model: 'dall-e-3', prompt: 'a cat', n: 1, size: '1024x1024' })
    const u = r._tokenUsage
    assert.equal(u.api, 'images')
    assert.ok(u.cost, 'dall-e-3 is priced per image')
    // dall-e-3 1024x1024 standard: 0.04 USD per image.
    assert.equal(decimal(u.cost.total_usd), '0.04')
    assert.equal(u.cost.breakdown.images, u.cost.total_usd)
  })

  test('audio.transcriptions.create', async () => {
    const file = new File([new Uint8Array(64)], 'a.wav', { type: 'audio/wav' })
    const r = await openai.audio.transcriptions.create({ model: 'gpt-4o-transcribe', file })
    assert.equal(r.text, 'hello from the mock')
    const u = r._tokenUsage
    assert.equal(u.api, 'audio_transcription')
    assert.equal(u.audio_input_tokens, 70)
    assert.equal(u.output_tokens, 9)
  })

  test('audio.speech.create: priced from the input length', async () => {
    const seen = []
    const e2 = makeTracker({ onRecord: (u) => seen.push(u) })
    try {
      const client = e2.tracker.wrap(openaiClient(mock))
      const res = await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hello there' })
      assert.equal((await res.arrayBuffer()).byteLength, 64)
      assert.equal(seen.length, 1)
      assert.equal(seen[0].api, 'audio_speech')
      // tts-1: 15.00 USD per 1M characters; "Hello there" is 11 characters: 11 × 15 = 165 µ$.
      assert.equal(decimal(seen[0].cost.total_usd), '0.000165')
    } finally {
      await e2.cleanup()
    }
  })
})
