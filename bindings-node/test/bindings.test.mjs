// The binding contract of issue 9 (tests/vectors/bindings.json, format in tests/vectors/README.md, "Binding
// cases"): each case's call made through the wrapped official SDK against the mock server, then the request
// the mock received, the chunks the caller saw, the record (`_tokenUsage`), its key sets, the stream's end and
// the tracker's report compared with the case. The Python suite runs the same cases
// (bindings-python/tests/test_bindings.py); expected values are the case's (hand-computed), never the
// library's. As ordinary cases they also run in vectors.test.mjs.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'

import { Tracker, tokenUsage } from '../js/index.mjs'
import { VECTORS_DIR, startMock } from './helpers.mjs'

const native = createRequire(import.meta.url)('../js/native.cjs')
const CASES = JSON.parse(readFileSync(join(VECTORS_DIR, 'bindings.json'), 'utf8')).filter((c) => c.binding)

/** `{"$date_at_offset": "+09:00"}`: the date of `timestamp` shifted by a fixed UTC offset. */
function dateAtOffset(timestamp, offset) {
  const sign = offset.startsWith('-') ? -1 : 1
  const [h, m] = offset.replace(/^[+-]/, '').split(':').map(Number)
  return new Date(Date.parse(timestamp) + sign * (h * 60 + m) * 60_000).toISOString().slice(0, 10)
}

/** Objects as subsets (the expected keys only), arrays element by element, the rest exactly (type included). */
function match(actual, expected, path, timestamp) {
  if (expected !== null && typeof expected === 'object' && '$date_at_offset' in expected) {
    assert.ok(timestamp, path)
    expected = dateAtOffset(timestamp, expected.$date_at_offset)
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual) && actual.length === expected.length, `${path}: ${JSON.stringify(actual)}`)
    expected.forEach((e, i) => match(actual[i], e, `${path}[${i}]`, timestamp))
  } else if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', `${path}: ${JSON.stringify(actual)} is not an object`)
    for (const [key, want] of Object.entries(expected)) {
      assert.ok(key in actual, `${path}.${key} missing`)
      match(actual[key], want, `${path}.${key}`, timestamp)
    }
  } else {
    assert.strictEqual(actual, expected, path)
  }
}

/** The case's snake_case attribution as `wrap()` takes it. */
function attribution(a) {
  if (!a) return undefined
  return {
    userId: a.user_id,
    workspaceId: a.workspace_id,
    project: a.project,
    sessionId: a.session_id,
    conversationId: a.conversation_id,
    tags: a.tags,
  }
}

function sdkClient(sdk, mock) {
  if (sdk === 'openai') return new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 't', maxRetries: 0 })
  if (sdk === 'anthropic') return new Anthropic({ baseURL: mock.url, apiKey: 't', maxRetries: 0 })
  throw new Error(`no SDK ${sdk}`)
}

/** The native tracker behind a `Tracker` (the object the wrappers call). */
function nativeOf(tracker) {
  const s = Object.getOwnPropertySymbols(tracker).find((k) => tracker[k] instanceof native.NativeTracker)
  return tracker[s]
}

/**
 * The case's stream through core's call engine as the wrappers drive it (on its own tracker, so the case's
 * report sees only the SDK call), finished once.
 */
function nativeStreamAfterEnd(c, tracker) {
  const client = new native.NativeClient({ sdk: c.binding.call.sdk })
  const params = c.binding.call.params
  const includeUsage = params.stream_options ? params.stream_options.include_usage : undefined
  // (client, api, path, model, stream, serviceTier, includeUsage, hasTools, attribution)
  const call = nativeOf(tracker).begin(client, c.api, '', params.model, true, undefined, includeUsage, false, undefined)
  call.setRequestBody(JSON.stringify(params))
  const stream = call.intoStream()
  for (const e of c.stream) stream.pushEvent(e.event ?? null, typeof e.data === 'string' ? e.data : JSON.stringify(e.data))
  assert.notEqual(stream.finish(false), null, 'the first finish records')
  return stream
}

let mock

before(async () => {
  mock = await startMock()
})

after(() => mock.stop())

describe('binding cases (tests/vectors/bindings.json)', () => {
  test('every binding case is here', () => {
    assert.ok(CASES.length >= 7, `only ${CASES.length} binding cases`)
  })

  for (const c of CASES) {
    test(c.name, async () => {
      const { binding } = c
      const expected = binding.expected
      const config = binding.tracker
      const failures = []
      const tracker = new Tracker({
        store: config.store,
        currency: config.currency,
        rates: config.rates,
        timezone: config.timezone,
        onError: (err, info) => failures.push(`${info.operation}: ${err.message}`),
      })
      try {
        const client = tracker.wrap(sdkClient(binding.call.sdk, mock), attribution(binding.attribution))
        const path = binding.call.method.split('.')
        const owner = path.slice(0, -1).reduce((o, p) => o[p], client)
        const params = binding.call.params
        const options = binding.mock_case ? { headers: { 'x-mock-case': binding.mock_case } } : undefined
        const result = await owner[path.at(-1)](params, options)

        if (params.stream) {
          const chunks = []
          for await (const chunk of result) chunks.push(chunk)
          if ('chunks_seen' in expected) assert.equal(chunks.length, expected.chunks_seen, 'chunks seen')
          if ('last_chunk_usage' in expected) assert.equal(chunks.at(-1).usage != null, expected.last_chunk_usage, 'last chunk usage')
        }
        if ('sent' in expected) match((await mock.requests()).at(-1).body, expected.sent, 'sent')

        const record = tokenUsage(result)
        assert.ok(record, 'nothing recorded')
        if ('record' in expected) match(record, expected.record, 'record')
        for (const [of, keys] of Object.entries(expected.keys || {})) {
          assert.deepEqual(Object.keys(of === '' ? record : record[of]), keys, `keys of ${of || 'the record'}`)
        }

        if ('after_end' in expected) {
          // Through the SDK: ending the ended stream again records nothing more.
          await result[Symbol.asyncIterator]().return()
          assert.equal(tokenUsage(result), record)
          // Through core's call engine: finish again and push once more, quietly.
          const own = new Tracker({ store: 'memory://' })
          try {
            const stream = nativeStreamAfterEnd(c, own)
            assert.equal(stream.finish(false), expected.after_end.finish)
            assert.equal(stream.pushEvent(null, '{"choices":[]}'), expected.after_end.push_hidden)
          } finally {
            await own.close()
          }
        }

        if ('report' in expected) {
          const { query, rows: want, keys } = expected.report
          const rows = await tracker.usage({ groupBy: query.group_by, timezone: query.timezone, p95: query.p95 })
          match(rows, want, 'rows', record.timestamp)
          for (const row of rows) assert.deepEqual(Object.keys(row), keys, 'report row keys')
        }
        // An unpriced call is a record, not a tracking failure (unknownModel defaults to 'flag').
        assert.deepEqual(failures, [], 'tracking failures')
      } finally {
        await tracker.close()
      }
    })
  }
})
