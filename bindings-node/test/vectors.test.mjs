// The shared vectors (tests/vectors/, format in its README): each OpenAI / Azure / xAI / Anthropic case is
// served by the mock server (header `x-mock-case: <name>`) and fetched through the wrapped official SDK;
// `_tokenUsage` must equal the case's expected usage and its exact USD cost. The Python suite checks the
// same cases, so the two packages agree cent for cent.
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import OpenAI, { AzureOpenAI } from 'openai'

import { VECTORS_DIR, anthropicClient, makeTracker, openaiClient, startMock } from './helpers.mjs'

const SDK_SURFACES = {
  openai: ['chat_completions', 'responses', 'embeddings', 'images', 'audio_transcription', 'audio_speech'],
  azure: ['chat_completions', 'responses', 'embeddings'],
  xai: ['chat_completions', 'responses'],
  anthropic: ['messages'],
}

const USAGE_FIELDS = {
  input_tokens: 'inputTokens',
  cache_read_tokens: 'cacheReadTokens',
  cache_write_tokens: 'cacheWriteTokens',
  cache_write_1h_tokens: 'cacheWrite1hTokens',
  output_tokens: 'outputTokens',
  reasoning_tokens: 'reasoningTokens',
  audio_input_tokens: 'audioInputTokens',
  audio_cache_read_tokens: 'audioCacheReadTokens',
  audio_output_tokens: 'audioOutputTokens',
  image_input_tokens: 'imageInputTokens',
  image_output_tokens: 'imageOutputTokens',
  web_search_requests: 'webSearchRequests',
  usage_source: 'usageSource',
}

function loadCases() {
  if (!existsSync(VECTORS_DIR)) return []
  return readdirSync(VECTORS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .flatMap((f) => JSON.parse(readFileSync(join(VECTORS_DIR, f), 'utf8')))
}

/** Why a case cannot go through an SDK call, or null. */
function skipReason(c) {
  if (!(SDK_SURFACES[c.provider] || []).includes(c.api)) return 'not an SDK surface of the Node package'
  if (c.expected.error_code) return 'malformed input: the SDK itself rejects it'
  if (c.response_raw !== undefined || c.stream_file !== undefined) return 'raw body: not served by the mock'
  if (c.at) return 'priced at a past date; SDK calls are priced now'
  if (c.prices) return "priced with the case's own price file; SDK calls use the embedded prices"
  if (c.price_options && c.price_options.batch) return 'batch pricing is not an SDK call'
  if (c.prompt_estimate !== undefined) return 'the prompt estimate comes from the caller'
  if (Array.isArray(c.stream) && c.expected.usage && c.expected.usage.usage_source === 'none') {
    return 'nothing reported and no estimate: an SDK call always carries a prompt, which is estimated'
  }
  if (c.api === 'messages' && Array.isArray(c.stream) && c.stream.some((e) => e.event === undefined)) {
    return 'the anthropic SDK drops SSE events without an `event:` line'
  }
  return null
}

/** Decimal strings compared exactly (trailing zeros ignored). */
function decimal(s) {
  const [i, f = ''] = String(s).split('.')
  const frac = f.replace(/0+$/, '')
  return frac ? `${BigInt(i)}.${frac}` : `${BigInt(i)}`
}

const CASES = loadCases()
const PROMPT = [{ role: 'user', content: 'hi' }]

let mock
before(async () => {
  mock = await startMock()
})
after(() => mock && mock.stop())

function clientFor(tracker, c) {
  const name = { headers: { 'x-mock-case': c.name } }
  switch (c.provider) {
    case 'azure':
      return tracker.wrap(
        new AzureOpenAI({ endpoint: mock.url, apiKey: 'test', apiVersion: '2024-10-21', maxRetries: 0, defaultHeaders: name.headers }),
      )
    case 'xai':
      return tracker.wrap(
        new OpenAI({
          baseURL: 'https://api.x.ai/v1',
          apiKey: 'test',
          maxRetries: 0,
          defaultHeaders: name.headers,
          fetch: (url, init) => fetch(String(url).replace('https://api.x.ai', mock.url), init),
        }),
      )
    case 'anthropic':
      return tracker.wrap(anthropicClient(mock, { defaultHeaders: name.headers }))
    default:
      return tracker.wrap(openaiClient(mock, { defaultHeaders: c.api === 'audio_speech' ? {} : name.headers }))
  }
}

/** Makes the case's call; returns what carries `_tokenUsage` (the result or the consumed stream). */
async function call(client, c) {
  const streaming = Array.isArray(c.stream)
  const tier = c.price_options && c.price_options.service_tier ? { service_tier: c.price_options.service_tier } : {}
  const req = c.request || {}
  let result
  switch (c.api) {
    case 'chat_completions': {
      const body = { model: c.model, messages: PROMPT, ...tier }
      if (streaming) {
        body.stream = true
        // An abandoned case stops after the last recorded event: ask for usage explicitly so every event reaches us.
        if (c.aborted) body.stream_options = { include_usage: true }
      }
      result = await client.chat.completions.create(body)
      break
    }
    case 'responses':
      result = await client.responses.create({ model: c.model, input: 'hi', stream: streaming || undefined, ...tier })
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
      result = await client.audio.speech.create({ voice: 'alloy', input: 'hi', ...req, model: c.model })
      break
    case 'messages':
      result = await client.messages.create({ model: c.model, max_tokens: 1024, messages: PROMPT, stream: streaming || undefined })
      break
    default:
      throw new Error(`no SDK call for ${c.api}`)
  }
  if (streaming) {
    // What the SDK yields: every data event but `[DONE]` (and Anthropic's `ping`, which its SDK drops).
    const events = c.stream.filter((e) => e.data !== '[DONE]' && e.event !== 'ping').length
    let n = 0
    try {
      for await (const _ of result) {
        if (c.aborted && ++n === events) break
      }
    } catch {
      // A stream ending in the provider's error event: the SDK throws, the stream is still recorded.
    }
  }
  return result
}

describe('shared vectors through the official SDKs', { skip: CASES.length === 0 && 'tests/vectors/ not found' }, () => {
  for (const c of CASES) {
    const reason = skipReason(c)
    test(c.name, { skip: reason || false }, async () => {
      const seen = []
      const env = makeTracker({ onRecord: (u) => seen.push(u) })
      try {
        const client = clientFor(env.tracker, c)
        await call(client, c)
        assert.equal(seen.length, 1, 'exactly one event per call')
        const u = seen[0]
        assert.equal(u.provider, c.provider)
        assert.equal(u.api, c.api)
        const exp = c.expected.usage || {}
        const counted = exp.usage_source === undefined || exp.usage_source === 'reported'
        for (const [field, key] of Object.entries(USAGE_FIELDS)) {
          if (exp[field] === undefined) continue
          if (!counted && field !== 'usage_source') continue // local-tokenizer counts depend on the prompt sent
          assert.equal(u[key], exp[field], `${field}`)
        }
        if (exp.flags) assert.deepEqual([...u.flags].sort(), [...exp.flags].sort(), 'flags')
        for (const f of c.expected.flags_include || []) assert.ok(u.flags.includes(f), `flag ${f}`)
        if (c.expected.cost_usd !== undefined && counted) {
          assert.ok(u.cost, `priced (pricing error: ${u.pricingError && u.pricingError.code})`)
          if (c.cost_uncertain && decimal(u.cost.usd) !== decimal(c.expected.cost_usd)) {
            test.diagnostic?.(`${c.name}: cost ${u.cost.usd} != ${c.expected.cost_usd} (price marked uncertain)`)
          } else {
            assert.equal(decimal(u.cost.usd), decimal(c.expected.cost_usd), 'cost_usd')
          }
        }
      } finally {
        await env.cleanup()
      }
    })
  }
})
