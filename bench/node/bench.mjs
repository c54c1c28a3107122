// Node package benchmarks (figures, not timed tests): `node bench/node/bench.mjs [--quick]`.
//
// 1. Overhead per wrapped call vs the unwrapped client, against the local mock server (real HTTP) and with
//    an in-process fetch (no network, so the difference is the wrapper alone). Median of per-call times.
// 2. Overhead per stream chunk: a 2,000-chunk chat stream through an in-process fetch, wrapped vs unwrapped.
// 3. `cost()` per call.
// 4. `countTokens` throughput vs gpt-tokenizer (o200k_base, same text, same run).
// 5. `estimate` of a 20-message chat vs gpt-tokenizer's encodeChat and js-tiktoken.
// 6. `require('llmledger')` cost: a new process that requires it vs a bare `node -e 0`.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'

import OpenAI from 'openai'

import { Tracker, cost, countTokens, estimate } from '../../bindings-node/js/index.mjs'
import { startMock } from '../../bindings-node/test/helpers.mjs'

const QUICK = process.argv.includes('--quick')
const scale = (n) => (QUICK ? Math.max(1, Math.floor(n / 10)) : n)

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

function fmtUs(ms) {
  return `${(ms * 1000).toFixed(2)} µs`
}

async function timeCalls(n, fn) {
  const times = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await fn()
    times.push(performance.now() - t0)
  }
  return times
}

/**
 * Alternates blocks of `n` unwrapped and `n` wrapped calls, `rounds` times, so load drift and GC affect both
 * alike; returns the median block mean per call (ms) of each.
 */
async function compare(n, rounds, unwrapped, wrapped) {
  const a = []
  const b = []
  const ca = []
  const cb = []
  for (let r = 0; r < rounds; r++) {
    let c0 = process.cpuUsage()
    let t0 = performance.now()
    for (let i = 0; i < n; i++) await unwrapped()
    a.push((performance.now() - t0) / n)
    let c = process.cpuUsage(c0)
    ca.push((c.user + c.system) / 1000 / n)
    c0 = process.cpuUsage()
    t0 = performance.now()
    for (let i = 0; i < n; i++) await wrapped()
    b.push((performance.now() - t0) / n)
    c = process.cpuUsage(c0)
    cb.push((c.user + c.system) / 1000 / n)
  }
  // CPU time (all threads of the process: the ledger writer included) is what the wrapper costs; wall time
  // also carries whatever else the machine is doing.
  return { unwrapped: median(a), wrapped: median(b), cpuUnwrapped: median(ca), cpuWrapped: median(cb) }
}

const CHAT_BODY = {
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from the bench.' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 120, completion_tokens: 45, total_tokens: 165, prompt_tokens_details: { cached_tokens: 20 } },
}
const CHAT_JSON = JSON.stringify(CHAT_BODY)

/** The SSE events of a chat stream, each its own body chunk as a network would deliver them. */
function sseEvents(chunks) {
  const base = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o' }
  const enc = new TextEncoder()
  const out = []
  for (let i = 0; i < chunks; i++) {
    const chunk = { ...base, choices: [{ index: 0, delta: { content: ' word' }, finish_reason: null }] }
    out.push(enc.encode(`data: ${JSON.stringify(chunk)}\n\n`))
  }
  out.push(enc.encode(`data: ${JSON.stringify({ ...base, choices: [], usage: CHAT_BODY.usage })}\n\n`))
  out.push(enc.encode('data: [DONE]\n\n'))
  return out
}

let responseSeq = 0

function inProcessClient(events) {
  const fetch = async (_url, init) => {
    const body = JSON.parse(init.body)
    if (body.stream) {
      let i = 0
      const stream = new ReadableStream({
        pull(controller) {
          if (i < events.length) controller.enqueue(events[i++])
          else controller.close()
        },
      })
      return new Response(stream, { headers: { 'content-type': 'text/event-stream' } })
    }
    // A fresh response id per call, as a provider sends (the ledger keys events by it).
    return new Response(CHAT_JSON.replace('chatcmpl-bench', `chatcmpl-bench-${responseSeq++}`), {
      headers: { 'content-type': 'application/json' },
    })
  }
  return new OpenAI({ apiKey: 'x', baseURL: 'http://bench.invalid/v1', maxRetries: 0, fetch })
}

const MESSAGES = [{ role: 'user', content: 'Say hello.' }]

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'llmledger-bench-'))
  const tracker = new Tracker({ store: `sqlite://${join(dir, 'bench.db')}` })
  const results = {}
  const mock = await startMock()
  try {
    // 1a. Against the mock server (real HTTP).
    const raw = new OpenAI({ apiKey: 'x', baseURL: `${mock.url}/v1`, maxRetries: 0 })
    const wrapped = tracker.wrap(new OpenAI({ apiKey: 'x', baseURL: `${mock.url}/v1`, maxRetries: 0 }), { userId: 'bench' })
    const call = (c) => () => c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES })
    await timeCalls(scale(50), call(raw))
    await timeCalls(scale(50), call(wrapped))
    const http = await compare(scale(40), 9, call(raw), call(wrapped))
    results.httpCall = http

    // 1b. In-process fetch: the wrapper's own cost.
    const STREAM_CHUNKS = 2000
    const stream = sseEvents(STREAM_CHUNKS)
    const rawLocal = inProcessClient(stream)
    const wrappedLocal = tracker.wrap(inProcessClient(stream), { userId: 'bench' })
    await timeCalls(scale(2000), call(rawLocal))
    await timeCalls(scale(2000), call(wrappedLocal))
    results.localCall = await compare(scale(500), 21, call(rawLocal), call(wrappedLocal))
    // The same with an in-memory ledger: the wrapper and the recording on the main thread, without the
    // SQLite writer thread's work per event.
    const memTracker = new Tracker({ store: 'memory://' })
    const wrappedMem = memTracker.wrap(inProcessClient(stream), { userId: 'bench' })
    await timeCalls(scale(2000), call(wrappedMem))
    results.localCallMem = await compare(scale(500), 21, call(rawLocal), call(wrappedMem))
    await memTracker.close()
    // The JS wrapper alone: the same tracker with its native recorder replaced by a canned result (an
    // internal hook, used only here), to split the per-call cost between the JS layer and the Rust record.
    const stubTracker = new Tracker({ store: 'memory://' })
    const nativeKey = Object.getOwnPropertySymbols(stubTracker).find((k) => k.description === 'llmledger.native')
    const canned = stubTracker[nativeKey].recordResponse('openai', 'chat_completions', 'gpt-4o', null, null, null, CHAT_JSON, 1)
    const realNative = stubTracker[nativeKey]
    stubTracker[nativeKey] = { recordResponse: () => canned, flush: () => realNative.flush(), close: () => realNative.close() }
    const wrappedStub = stubTracker.wrap(inProcessClient(stream), { userId: 'bench' })
    await timeCalls(scale(2000), call(wrappedStub))
    results.localCallStub = await compare(scale(500), 21, call(rawLocal), call(wrappedStub))
    await stubTracker.close()

    // 2. Per stream chunk.
    const consume = (c) => async () => {
      const s = await c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES, stream: true })
      for await (const _ of s);
      if (c === wrappedLocal && !s._tokenUsage) throw new Error('the wrapped stream was not recorded')
    }
    await timeCalls(scale(20), consume(rawLocal))
    await timeCalls(scale(20), consume(wrappedLocal))
    const st = await compare(scale(5), 15, consume(rawLocal), consume(wrappedLocal))
    results.chunk = { ...st, chunks: STREAM_CHUNKS + 1 }

    // 3. cost()
    const usage = { model: 'gpt-4o', inputTokens: 1000, cacheReadTokens: 200, outputTokens: 300 }
    for (let i = 0; i < 10000; i++) cost(usage)
    const nCost = scale(200000)
    let t0 = performance.now()
    for (let i = 0; i < nCost; i++) cost(usage)
    results.costNs = ((performance.now() - t0) * 1e6) / nCost

    // 4. countTokens vs gpt-tokenizer on the same text.
    const gpt = await import('gpt-tokenizer/encoding/o200k_base')
    const words = 'The quick brown fox jumps over the lazy dog; accounting for tokens, exactly, 12345 times. '
    const text = words.repeat(Math.ceil(200_000 / words.length))
    const ours = countTokens(text, 'gpt-4o')
    const theirs = gpt.encode(text).length
    const reps = scale(20)
    t0 = performance.now()
    for (let i = 0; i < reps; i++) countTokens(text, 'gpt-4o')
    const oursMs = (performance.now() - t0) / reps
    t0 = performance.now()
    for (let i = 0; i < reps; i++) gpt.encode(text)
    const theirsMs = (performance.now() - t0) / reps
    results.countTokens = { bytes: text.length, ours, theirs, oursMs, theirsMs }

    // 5. estimate of a 20-message chat vs gpt-tokenizer encodeChat and js-tiktoken.
    const chat = Array.from({ length: 20 }, (_, i) => ({
      role: i % 2 ? 'assistant' : 'user',
      content: `Message ${i}: ${words.repeat(4)}`,
    }))
    const { Tiktoken } = await import('js-tiktoken/lite')
    const o200k = (await import('js-tiktoken/ranks/o200k_base')).default
    const estReps = scale(200)
    for (let i = 0; i < 20; i++) estimate({ model: 'gpt-4o', messages: chat, maxOutputTokens: 500 })
    t0 = performance.now()
    for (let i = 0; i < estReps; i++) estimate({ model: 'gpt-4o', messages: chat, maxOutputTokens: 500 })
    const estMs = (performance.now() - t0) / estReps
    t0 = performance.now()
    for (let i = 0; i < estReps; i++) gpt.encodeChat(chat, 'gpt-4o')
    const gptChatMs = (performance.now() - t0) / estReps
    // js-tiktoken: building the encoder is part of a cold estimate in a short-lived process; both are shown.
    t0 = performance.now()
    const enc = new Tiktoken(o200k)
    const jsBuildMs = performance.now() - t0
    t0 = performance.now()
    for (let i = 0; i < estReps; i++) for (const m of chat) enc.encode(m.content)
    const jsMs = (performance.now() - t0) / estReps
    results.estimate = { estMs, gptChatMs, jsMs, jsBuildMs }
  } finally {
    mock.stop()
    await tracker.close()
    rmSync(dir, { recursive: true, force: true })
  }

  // 6. Start-up: median wall time of fresh processes.
  const entry = new URL('../../bindings-node/js/index.cjs', import.meta.url).pathname
  const spawnMs = (args) => {
    const t0 = performance.now()
    spawnSync(process.execPath, args, { stdio: 'ignore' })
    return performance.now() - t0
  }
  const bare = []
  const req = []
  for (let i = 0; i < scale(30); i++) {
    bare.push(spawnMs(['-e', '0']))
    req.push(spawnMs(['-e', `require(${JSON.stringify(entry)})`]))
  }
  results.require = { bare: median(bare), req: median(req) }

  const r = results
  console.log(`node ${process.version}${QUICK ? ' (quick)' : ''}`)
  console.log(
    `require('llmledger'):        ${(r.require.req - r.require.bare).toFixed(1)} ms over a bare node -e 0 (${r.require.req.toFixed(1)} vs ${r.require.bare.toFixed(1)} ms, median)`,
  )
  const line = (label, m, per = 1) =>
    console.log(
      `${label}wall ${fmtUs(m.wrapped / per)} vs ${fmtUs(m.unwrapped / per)} unwrapped → ${fmtUs((m.wrapped - m.unwrapped) / per)}; ` +
        `CPU ${fmtUs(m.cpuWrapped / per)} vs ${fmtUs(m.cpuUnwrapped / per)} → ${fmtUs((m.cpuWrapped - m.cpuUnwrapped) / per)}`,
    )
  line('per call, mock server:      ', r.httpCall)
  line('per call, in-process fetch: ', r.localCall)
  line('  same, memory:// ledger:     ', r.localCallMem)
  line('  JS wrapper alone:           ', r.localCallStub)
  line(`per chunk (${r.chunk.chunks}-chunk stream): `, r.chunk, r.chunk.chunks)
  console.log(`cost():                     ${r.costNs.toFixed(0)} ns per call`)
  const ct = r.countTokens
  console.log(
    `countTokens ${ct.bytes} chars:  ${ct.oursMs.toFixed(2)} ms (${((ct.bytes / ct.oursMs) * 1e-3).toFixed(1)} MB/s) vs gpt-tokenizer ${ct.theirsMs.toFixed(2)} ms → ${(ct.theirsMs / ct.oursMs).toFixed(1)}× (tokens ${ct.ours} vs ${ct.theirs})`,
  )
  const e = r.estimate
  console.log(
    `estimate, 20-message chat:  ${e.estMs.toFixed(3)} ms vs gpt-tokenizer encodeChat ${e.gptChatMs.toFixed(3)} ms, js-tiktoken ${e.jsMs.toFixed(3)} ms (+ ${e.jsBuildMs.toFixed(1)} ms to build its encoder)`,
  )
}

await main()
