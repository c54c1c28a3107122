// Every shared vector (tests/vectors/*.json, format in its README) through the Node package, two ways:
//  - `record`: the case's exact bytes through the package's own entry points — `tracker.record()` for a response
//    body, the native stream the wrappers push into for a stream (every event, or a raw SSE file as bytes for
//    core to split; then finish or abandon), and
//    `cost({ at, batch })` where the case pins a date or batch pricing;
//  - `sdk`: for OpenAI / Azure / xAI / Anthropic cases, the same bytes served by the mock server
//    (`x-mock-case: <name>`) and fetched through the wrapped official SDK.
// Expected usage, flags, error codes and USD costs come from the case (hand-computed), never from the library.
// Error cases must give the flagged, unpriced record with the case's code (a response) or fail the first bad
// push with it (a stream). Each case's outcome goes to a per-case table (LLMLEDGER_VECTOR_TABLE_DIR/node.tsv)
// that scripts/test.sh prints next to the Rust and Python ones.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import OpenAI, { AzureOpenAI } from 'openai'

import { cost, countTokens } from '../js/index.mjs'
import { ROOT, VECTORS_DIR, anthropicClient, makeTracker, openaiClient, startMock } from './helpers.mjs'

const native = createRequire(import.meta.url)('../js/native.cjs')

const SDK_SURFACES = {
  openai: ['chat_completions', 'responses', 'embeddings', 'images', 'audio_transcription', 'audio_speech'],
  azure: ['chat_completions', 'responses', 'embeddings'],
  xai: ['chat_completions', 'responses'],
  anthropic: ['messages'],
}

function loadCases() {
  if (!existsSync(VECTORS_DIR)) return []
  return readdirSync(VECTORS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .flatMap((f) => JSON.parse(readFileSync(join(VECTORS_DIR, f), 'utf8')))
}

const CASES = loadCases()
const PROMPT = [{ role: 'user', content: 'hi' }]
const TABLE = new Map()

const isStream = (c) => Array.isArray(c.stream) || typeof c.stream_file === 'string'
const batch = (c) => Boolean(c.price_options && c.price_options.batch)

/** Decimal strings compared exactly (trailing zeros ignored). */
function decimal(s) {
  const [i, f = ''] = String(s).split('.')
  const frac = f.replace(/0+$/, '')
  return frac ? `${BigInt(i)}.${frac}` : `${BigInt(i)}`
}

/** The case's events (event name, data text) as the provider sent them, for an SDK that split them. */
function streamEvents(c) {
  return c.stream.map((e) => ({ event: e.event, data: typeof e.data === 'string' ? e.data : JSON.stringify(e.data) }))
}

/** Feeds the case's stream to core: events one by one, or a raw SSE transcript as bytes (core splits it). */
function pushStream(ns, c) {
  if (c.stream_file) {
    ns.pushBytes(readFileSync(join(VECTORS_DIR, c.stream_file)))
    return
  }
  for (const ev of streamEvents(c)) ns.pushEvent(ev.event, ev.data)
}

/**
 * A request whose prompt the core counts as exactly `n` tokens for `model` (a prompt estimate is taken from the
 * request), or null when no such text is found. Words with a leading space never merge, so the count grows
 * by one (or by the model's scale) per word.
 */
function requestWithPrompt(model, n) {
  for (let k = 1; k <= 4 * n; k++) {
    const text = 'the' + ' the'.repeat(k - 1)
    const got = countTokens(text, model)
    if (got === n) return JSON.stringify({ input: text })
    if (got > n) return null
  }
  return null
}

/** Compares a record with the case; `counted`: the input (and so the cost) is comparable. */
function checkUsage(c, u, { counted = true, priced = true } = {}) {
  const exp = c.expected.usage || {}
  // The record's keys are the vectors' (core's one record shape): every expected field is compared.
  for (const [field, want] of Object.entries(exp)) {
    if (!counted && field === 'input_tokens') continue
    assert.ok(field in u, `record has ${field}`)
    if (typeof want === 'number' && typeof u[field] === 'string') assert.equal(decimal(u[field]), decimal(want), field)
    else assert.deepEqual(u[field], want, field)
  }
  if (exp.flags) assert.deepEqual([...u.flags].sort(), [...exp.flags].sort(), 'flags')
  for (const f of c.expected.flags_include || []) assert.ok(u.flags.includes(f), `flag ${f}`)
  if (c.expected.cost_usd === undefined || !counted || !priced) return
  if (c.prices) {
    // Priced by a tracker loaded with the case's own price file (one version, in force since before now).
    if (c.price_options && c.price_options.region) return // no region argument here; the Rust runner compares
    assert.ok(u.cost, `priced (pricing error: ${u.pricing_error && u.pricing_error.code})`)
    assert.equal(decimal(u.cost.total_usd), decimal(c.expected.cost_usd), "cost_usd (the case's own prices)")
    return
  }
  if (c.at || batch(c)) {
    // The tracker prices at now, standard rates: price this usage at the case's date / batch instead.
    const got = cost({
      model: c.model,
      inputTokens: u.input_tokens,
      cacheReadTokens: u.cache_read_tokens,
      cacheWriteTokens: u.cache_write_tokens,
      cacheWrite1hTokens: u.cache_write_1h_tokens,
      outputTokens: u.output_tokens,
      reasoningTokens: u.reasoning_tokens,
      audioInputTokens: u.audio_input_tokens,
      audioOutputTokens: u.audio_output_tokens,
      imageInputTokens: u.image_input_tokens,
      imageOutputTokens: u.image_output_tokens,
      webSearchRequests: u.web_search_requests,
      at: c.at,
      batch: batch(c),
      serviceTier: (c.price_options && c.price_options.service_tier) || undefined,
    })
    assert.equal(decimal(got.exact), decimal(c.expected.cost_usd), 'cost_usd (cost() at the case date / batch)')
    return
  }
  assert.ok(u.cost, `priced (pricing error: ${u.pricing_error && u.pricing_error.code})`)
  assert.equal(decimal(u.cost.total_usd), decimal(c.expected.cost_usd), 'cost_usd')
}

/** The `record` path; returns a note for the table ('' when everything was compared). */
function viaRecord(tracker, c) {
  const code = c.expected.error_code
  if (!isStream(c)) {
    const response = c.response_raw !== undefined ? c.response_raw : c.response !== undefined ? c.response : '{}'
    const u = tracker.record({ provider: c.provider, api: c.api, model: c.model, response, request: c.request })
    if (code) {
      assert.equal(u.cost, null, 'an error case is recorded unpriced')
      assert.ok(u.pricing_error, 'an error case is recorded flagged')
      assert.equal(u.pricing_error.code, code, 'error code')
      return ''
    }
    // Priced or not is compared where the case has a cost (`checkUsage`): a case without one may be unpriced.
    checkUsage(c, u)
    return ''
  }
  let request = null
  let note = ''
  if (c.prompt_estimate !== undefined) {
    request = requestWithPrompt(c.model, c.prompt_estimate)
    if (request === null) note = 'input/cost not compared: no prompt text counts as the estimate'
  }
  // As the wrappers start a stream: a client of the case's provider, one call, its stream.
  const client = new native.NativeClient({ sdk: c.provider === 'anthropic' ? 'anthropic' : 'openai', provider: c.provider })
  // (client, api, path, model, stream, serviceTier, includeUsage, hasTools, attribution)
  const call = nativeOf(tracker).begin(client, c.api, '', c.model, true, undefined, true, false, undefined)
  if (request !== null) call.setRequestBody(request)
  const ns = call.intoStream()
  let failed = null
  try {
    pushStream(ns, c)
  } catch (err) {
    failed = err
  }
  if (code) {
    assert.ok(failed, `no push failed; want ${code}`)
    assert.equal(failed.code, code, `first failing push: ${failed.message}`)
    // As the wrappers do after a failed push: the stream is still recorded, once.
    const u = JSON.parse(ns.finish(true))
    assert.equal(u.api, c.api)
    return ''
  }
  if (failed) throw failed
  const u = JSON.parse(ns.finish(Boolean(c.aborted)))
  checkUsage(c, u, { counted: note === '' })
  return note
}

/** The native tracker behind a `Tracker` (the object the wrappers call). */
function nativeOf(tracker) {
  for (const s of Object.getOwnPropertySymbols(tracker)) {
    if (tracker[s] instanceof native.NativeTracker) return tracker[s]
  }
  throw new Error('no native tracker on the Tracker')
}

/** Why the `sdk` path does not apply to a case, or null. Every reason here is a fact about the SDKs. */
function noSdkReason(c) {
  if (!(SDK_SURFACES[c.provider] || []).includes(c.api)) return `no official SDK of ${c.provider}/${c.api} in the Node package`
  if (isStream(c) && c.expected.usage && c.expected.usage.usage_source === 'none') {
    return 'an SDK call always carries a prompt, which is counted, so the source cannot be "none"'
  }
  if (c.api === 'messages' && Array.isArray(c.stream) && c.stream.some((e) => e.event === undefined)) {
    return 'the anthropic SDK drops SSE events without an `event:` line'
  }
  if (c.api === 'chat_completions' && Array.isArray(c.stream) && c.stream.some((e) => e.event !== undefined)) {
    return 'the openai SDK yields chat chunks without their SSE `event:` name, which the wrapper then cannot see'
  }
  if (c.api === 'images' && c.expected.error_code && c.request === undefined) return 'the case has no request; the SDK always sends one'
  if (c.api === 'audio_speech' && !(c.request && 'input' in c.request)) return "the case's request has no input; the SDK always sends one"
  return null
}

let mock
before(async () => {
  mock = await startMock()
})
after(() => {
  if (mock) mock.stop()
  const dir = process.env.LLMLEDGER_VECTOR_TABLE_DIR || join(ROOT, 'target', 'vector-table')
  mkdirSync(dir, { recursive: true })
  const rows = [...TABLE].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, [status, detail]]) => `${name}\t${status}\t${detail}`)
  writeFileSync(join(dir, 'node.tsv'), rows.join('\n') + '\n')
})

function clientFor(tracker, c) {
  const headers = { 'x-mock-case': c.name }
  switch (c.provider) {
    case 'azure':
      return tracker.wrap(new AzureOpenAI({ endpoint: mock.url, apiKey: 'test', apiVersion: '2024-10-21', maxRetries: 0, defaultHeaders: headers }))
    case 'xai':
      return tracker.wrap(
        new OpenAI({
          baseURL: 'https://api.x.ai/v1',
          apiKey: 'test',
          maxRetries: 0,
          defaultHeaders: headers,
          fetch: (url, init) => fetch(String(url).replace('https://api.x.ai', mock.url), init),
        }),
      )
    case 'anthropic':
      return tracker.wrap(anthropicClient(mock, { defaultHeaders: headers }))
    default:
      return tracker.wrap(openaiClient(mock, { defaultHeaders: headers }))
  }
}

/** Makes the case's call through the SDK and consumes a stream; returns the error the SDK raised, if any. */
async function sdkCall(client, c) {
  const streaming = isStream(c)
  const tier = c.price_options && c.price_options.service_tier ? { service_tier: c.price_options.service_tier } : {}
  const req = c.request || {}
  let result
  try {
    switch (c.api) {
      case 'chat_completions': {
        const body = { model: c.model, messages: PROMPT, ...tier }
        if (streaming) {
          body.stream = true
          // An abandoned case stops after its last event: ask for usage explicitly so every event reaches us.
          if (c.aborted) body.stream_options = { include_usage: true }
        }
        result = await client.chat.completions.create(body)
        break
      }
      case 'responses':
        // The case's tools go with the call: a web search's context size is read from the request.
        const tools = c.request && c.request.tools ? { tools: c.request.tools } : {}
        result = await client.responses.create({ model: c.model, input: 'hi', stream: streaming || undefined, ...tier, ...tools })
        break
      case 'embeddings':
        result = await client.embeddings.create({ model: c.model, input: 'hi' })
        break
      case 'images':
        result = await client.images.generate({ prompt: 'a cat', ...req, model: c.model })
        break
      case 'audio_transcription': {
        const file = new File([new Uint8Array(16)], 'a.wav', { type: 'audio/wav' })
        result = await client.audio.transcriptions.create({ ...req, model: c.model, file })
        break
      }
      case 'audio_speech':
        result = await client.audio.speech.create({ voice: 'alloy', input: '', ...req, model: c.model })
        break
      case 'messages':
        result = await client.messages.create({ model: c.model, max_tokens: 1024, messages: PROMPT, stream: streaming || undefined })
        break
      default:
        throw new Error(`no SDK call for ${c.api}`)
    }
    if (streaming) {
      // What the SDK yields: every data event but `[DONE]` (and Anthropic's `ping`, which its SDK drops).
      // (Only event-list cases are aborted.)
      const events = c.aborted ? streamEvents(c).filter((e) => e.data !== '[DONE]' && e.event !== 'ping').length : 0
      let n = 0
      for await (const _ of result) {
        if (c.aborted && ++n === events) break
      }
    }
  } catch (err) {
    return err
  }
  return null
}

/** Tracker options for a case: its own price file (`prices`), written where the tracker can load it. */
function caseOptions(c) {
  if (!c.prices) return {}
  const dir = mkdtempSync(join(tmpdir(), 'llmledger-prices-'))
  const pricesPath = join(dir, 'prices.json')
  writeFileSync(pricesPath, JSON.stringify(c.prices))
  return { pricesPath }
}

/** The `sdk` path; returns a note for the table. */
async function viaSdk(c) {
  const seen = []
  const env = makeTracker({ onRecord: (u) => seen.push(u), ...caseOptions(c) })
  try {
    const err = await sdkCall(clientFor(env.tracker, c), c)
    const ours = env.warnings.filter((w) => w.info.operation !== 'stream')
    assert.deepEqual(ours.map((w) => w.err.message), [], 'tracking reported no failure')
    const code = c.expected.error_code
    if (code) {
      if (isStream(c)) {
        // The SDK parses the events first: either it rejects the bad one itself, or our push reports the code.
        const pushed = env.warnings.filter((w) => w.info.operation === 'stream')
        if (err === null) assert.equal(pushed.length && pushed[0].err.code, code, 'push failure reported with the code')
        assert.equal(seen.length, 1, 'the broken stream is still recorded once')
        return err === null ? 'sdk' : 'sdk (SDK rejected the event)'
      }
      if (err !== null) {
        // The SDK refused the body (not JSON) before returning; the call fails with the SDK's own error.
        assert.ok(!(err.code && /^(invalid_json|missing_field|invalid_value)$/.test(err.code)), `llmledger error leaked: ${err}`)
        return 'sdk (SDK rejected the body)'
      }
      assert.equal(seen.length, 1, 'exactly one event')
      assert.equal(seen[0].cost, null, 'unpriced')
      assert.equal(seen[0].pricing_error && seen[0].pricing_error.code, code, 'error code')
      return 'sdk'
    }
    // A stream that ends in the provider's error event: the SDK throws, the stream is still recorded.
    const flags = (c.expected.usage && c.expected.usage.flags) || c.expected.flags_include || []
    if (err !== null && !(isStream(c) && flags.includes('stream_aborted'))) throw err
    assert.equal(seen.length, 1, 'exactly one event per call')
    const u = seen[0]
    assert.equal(u.provider, c.provider)
    assert.equal(u.api, c.api)
    // A stream that did not report its input is counted from the prompt this call sent (not the case's).
    const counted = !isStream(c) || (c.expected.usage || {}).usage_source === 'reported' || c.expected.usage?.usage_source === undefined
    checkUsage(c, u, { counted })
    return counted ? 'sdk' : 'sdk (input from its own prompt)'
  } finally {
    await env.cleanup()
  }
}

describe('shared vectors', () => {
  test('the vectors are there', () => assert.ok(CASES.length >= 60, `only ${CASES.length} cases in ${VECTORS_DIR}`))
  for (const c of CASES) {
    test(c.name, async () => {
      const notes = []
      try {
        const env = makeTracker(caseOptions(c))
        try {
          const note = viaRecord(env.tracker, c)
          notes.push(note ? `record (${note})` : 'record')
        } finally {
          await env.cleanup()
        }
        const reason = noSdkReason(c)
        notes.push(reason === null ? await viaSdk(c) : `no sdk: ${reason}`)
        TABLE.set(c.name, ['pass', notes.join('; ')])
      } catch (err) {
        TABLE.set(c.name, ['fail', String(err && err.message).split('\n')[0]])
        throw err
      }
    })
  }
})
