'use strict'
// llmledger for Node: the JS layer over the native module (bindings-node/src, napi-rs).
//
// Owns what only JS can do: wrapping the official `openai` and `@anthropic-ai/sdk` clients with
// Proxies (the caller keeps the SDK's own objects, classes and APIPromise methods), per-request
// attribution through AsyncLocalStorage, stream pass-through, and the process exit hooks. Every count,
// price and record is computed once, in Rust; this file only reduces responses to the keys the core
// parser reads and hands them over.

const { AsyncLocalStorage } = require('node:async_hooks')
const { performance } = require('node:perf_hooks')
const native = require('./native.cjs')
const { costWith } = require('./cost.cjs')

const NATIVE = Symbol('llmledger.native')
const RECORD = Symbol('llmledger.record')
const FAIL = Symbol('llmledger.fail')
const STREAM = Symbol('llmledger.stream')
const REPORT = Symbol('llmledger.report')
const CONTEXT = Symbol('llmledger.context')
const RECORDED = Symbol('llmledger.recorded')
const NOTICES = Symbol('llmledger.notices')

// The SDK helper (`stream()`, `runTools()`, `toolRunner()`) a request was made by, so its usage can be
// attached to the helper object too.
const helperContext = new AsyncLocalStorage()

const ATTRIBUTION_KEYS = ['userId', 'workspaceId', 'project', 'sessionId', 'conversationId']

// ---------------------------------------------------------------------------------------------------------
// Attribution
// ---------------------------------------------------------------------------------------------------------

/** `extra` over `base`: set fields win, tags are merged. Neither argument is modified. */
function mergeAttribution(base, extra) {
  if (!extra) return base
  if (!base) return normalizeAttribution(extra)
  const out = { ...base }
  for (const k of ATTRIBUTION_KEYS) {
    if (extra[k] != null) out[k] = String(extra[k])
  }
  if (extra.tags) out.tags = { ...base.tags, ...stringValues(extra.tags) }
  return out
}

function normalizeAttribution(a) {
  if (!a) return undefined
  const out = {}
  for (const k of ATTRIBUTION_KEYS) {
    if (a[k] != null) out[k] = String(a[k])
  }
  if (a.tags) out.tags = stringValues(a.tags)
  return out
}

function stringValues(obj) {
  const out = {}
  for (const [k, v] of Object.entries(obj)) {
    if (v != null) out[k] = String(v)
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------
// Exit hooks: flush on `beforeExit` (asynchronous work is still possible), close on `exit` (synchronous).
// ---------------------------------------------------------------------------------------------------------

const liveTrackers = new Set()
let exitHooksInstalled = false

function installExitHooks() {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  process.on('beforeExit', () => {
    // Only trackers with records since their last flush: the next `beforeExit` then finds none and the
    // process can end.
    for (const t of liveTrackers) {
      if (t[CONTEXT].dirty) t.flush().catch((err) => t[REPORT](err, 'flush'))
    }
  })
  process.on('exit', () => {
    for (const t of liveTrackers) {
      try {
        t[NATIVE].closeSync()
      } catch (err) {
        t[REPORT](err, 'close')
      }
    }
    liveTrackers.clear()
  })
}

// ---------------------------------------------------------------------------------------------------------
// Tracker
// ---------------------------------------------------------------------------------------------------------

function nativeOptions(o) {
  const out = {}
  for (const k of ['store', 'currency', 'timezone', 'unknownModel', 'durability', 'pricesPath', 'litellmPricesPath', 'spillDir']) {
    if (o[k] != null) out[k] = String(o[k])
  }
  if (o.rates) out.rates = stringValues(o.rates)
  if (o.azureDeployments) out.azureDeployments = stringValues(o.azureDeployments)
  return out
}

function isoOrUndefined(v) {
  if (v == null) return undefined
  if (v instanceof Date) return v.toISOString()
  return String(v)
}

function nativeQuery(q) {
  const out = {}
  for (const k of ['userId', 'workspaceId', 'project', 'provider', 'model', 'sessionId', 'timezone']) {
    if (q[k] != null) out[k] = String(q[k])
  }
  out.since = isoOrUndefined(q.since)
  out.until = isoOrUndefined(q.until)
  if (q.groupBy != null) out.groupBy = Array.isArray(q.groupBy) ? q.groupBy.map(String) : [String(q.groupBy)]
  if (q.p95 != null) out.p95 = Boolean(q.p95)
  return out
}

function defaultOnError(err, info) {
  const code = err && err.code ? err.code : 'tracking_failed'
  const message = err && err.message ? err.message : String(err)
  process.emitWarning(`llmledger: ${info.operation} failed: ${message}`, { type: 'LlmledgerWarning', code })
}

/** The default route of a ledger notice: warnings as process warnings, the rest on the console. */
function defaultOnNotice(notice) {
  if (notice.level === 'warning') {
    process.emitWarning(notice.message, { type: 'LlmledgerWarning', code: `LLMLEDGER_${notice.kind.toUpperCase()}` })
  } else {
    console.info(notice.message)
  }
}

/** How often a tracker looks for ledger notices (core decides what and when; this only delivers). */
const NOTICE_POLL_MS = 1000

class Tracker {
  /**
   * @param {object} [options] see index.d.ts (`TrackerOptions`).
   */
  constructor(options = {}) {
    const { onError, onRecord, onNotice, ...rest } = options
    this[NATIVE] = new native.NativeTracker(nativeOptions(rest))
    this[CONTEXT] = {
      als: new AsyncLocalStorage(),
      onError: typeof onError === 'function' ? onError : defaultOnError,
      // A caller's onError also hears ledger warnings; the default one would repeat the notice's warning.
      noticeOnError: typeof onError === 'function',
      onRecord: typeof onRecord === 'function' ? onRecord : null,
      onNotice: typeof onNotice === 'function' ? onNotice : defaultOnNotice,
      reportUnpriced: this[NATIVE].unknownModel === 'error',
      dirty: false,
      closed: false,
    }
    // Unref'd: it never keeps the process alive.
    this[CONTEXT].noticeTimer = setInterval(() => this[NOTICES](), NOTICE_POLL_MS).unref()
    liveTrackers.add(this)
    installExitHooks()
  }

  /**
   * The ledger's state, cheap enough for a `/health` endpoint (see `LedgerHealth` in index.d.ts). Delivers
   * any pending ledger notice first.
   */
  health() {
    this[NOTICES]()
    return JSON.parse(this[NATIVE].healthJson())
  }

  /** Hands the ledger's notices to `onNotice`; warnings also to `onError` when one is set. */
  [NOTICES]() {
    for (const notice of JSON.parse(this[NATIVE].takeNoticesJson())) {
      if (notice.level === 'warning' && this[CONTEXT].noticeOnError) {
        const err = new Error(notice.message)
        err.code = 'store'
        this[CONTEXT].onError(err, { operation: 'ledger', notice })
      }
      this[CONTEXT].onNotice(notice)
    }
  }

  /** ISO 4217 code of the costs this tracker reports. */
  get currency() {
    return this[NATIVE].currency
  }

  /** Returns a tracked view of an `openai` or `@anthropic-ai/sdk` client. */
  wrap(client, attribution, options) {
    return wrapClient(this, client, normalizeAttribution(attribution), options || {})
  }

  /** Runs `fn` with `attribution` applied to every tracked call made inside it (nested runs merge). */
  run(attribution, fn) {
    const als = this[CONTEXT].als
    return als.run(mergeAttribution(als.getStore(), attribution), fn)
  }

  /** The attribution of the current `run()` context, if any. */
  currentAttribution() {
    const a = this[CONTEXT].als.getStore()
    return a ? { ...a, tags: a.tags ? { ...a.tags } : undefined } : undefined
  }

  /** A usage report from the ledger (everything recorded so far is flushed first). */
  async usage(query = {}) {
    if (this[CONTEXT].dirty) await this.flush()
    return this[NATIVE].usage(nativeQuery(query))
  }

  /** Waits until every event recorded so far is stored. */
  async flush() {
    this[CONTEXT].dirty = false
    try {
      await this[NATIVE].flush()
    } finally {
      this[NOTICES]()
    }
  }

  /** Flushes and closes the ledger; later calls through wrapped clients still work but are not recorded. */
  async close() {
    if (this[CONTEXT].closed) return
    this[CONTEXT].closed = true
    clearInterval(this[CONTEXT].noticeTimer)
    liveTrackers.delete(this)
    try {
      await this[NATIVE].close()
    } finally {
      this[NOTICES]()
    }
  }

  /** Records a call made outside a wrapped client, from its response body. */
  record({ provider, api, model, response, request, latencyMs = 0, attribution }) {
    const merged = mergeAttribution(this[CONTEXT].als.getStore(), normalizeAttribution(attribution))
    const body = typeof response === 'string' ? response : JSON.stringify(response)
    const req = request == null ? null : typeof request === 'string' ? request : JSON.stringify(request)
    const json = this[NATIVE].recordResponse(
      String(provider),
      String(api),
      String(model),
      merged ? JSON.stringify(merged) : null,
      null,
      req,
      body,
      count(latencyMs) ?? 0,
    )
    // Through the same hook as the wrappers: onRecord fires, and unknownModel: 'error' reports.
    return this[RECORDED](json).value
  }

  /** A pre-flight estimate in this tracker's currency. */
  estimate(request) {
    return estimateWith(this[NATIVE], request)
  }

  /** The cost of a given usage with this tracker's prices, in its currency. */
  cost(usage) {
    return costWith(this[NATIVE], usage)
  }

  countTokens(input, model) {
    return countTokens(input, model)
  }

  // -- used by the wrappers; tracking failures are reported, never thrown ----------------------------------

  // A call is `{ provider, api, model, attribution (JSON or null), serviceTier }`; results are `Recorded`.

  [RECORD](call, requestJson, responseJson, latencyMs) {
    try {
      const json = this[NATIVE].recordResponse(
        call.provider,
        call.api,
        call.model,
        call.attribution,
        call.serviceTier,
        requestJson,
        responseJson,
        latencyMs,
      )
      return this[RECORDED](json)
    } catch (err) {
      this[REPORT](err, 'record')
      return undefined
    }
  }

  [FAIL](call, errorClass, latencyMs) {
    try {
      const json = this[NATIVE].recordFailure(
        call.provider,
        call.api,
        call.model,
        call.attribution,
        call.serviceTier,
        errorClass,
        latencyMs,
      )
      return this[RECORDED](json)
    } catch (err) {
      this[REPORT](err, 'record')
      return undefined
    }
  }

  [STREAM](call, requestJson, hideUsageChunk) {
    try {
      return this[NATIVE].startStream(
        call.provider,
        call.api,
        call.model,
        call.attribution,
        call.serviceTier,
        requestJson,
        hideUsageChunk,
      )
    } catch (err) {
      this[REPORT](err, 'stream')
      return undefined
    }
  }

  [RECORDED](json) {
    const context = this[CONTEXT]
    context.dirty = true
    const recorded = new Recorded(json)
    // unknownModel: 'error' — the call is recorded unpriced, and the caller hears about it.
    if (context.reportUnpriced && json.includes('"pricingError":{')) {
      const { pricingError, model } = recorded.value
      const err = new Error(pricingError.message)
      err.code = pricingError.code
      err.field = 'model'
      err.value = model
      this[REPORT](err, 'price')
    }
    if (context.onRecord) {
      try {
        context.onRecord(recorded.value)
      } catch (err) {
        this[REPORT](err, 'onRecord')
      }
    }
    return recorded
  }

  [REPORT](err, operation) {
    try {
      this[CONTEXT].onError(err, { operation })
    } catch {
      // A throwing hook must not break the caller's request either.
    }
  }

}

/** The native `TokenUsage` JSON → the `_tokenUsage` object. */
function parseUsage(json) {
  const u = JSON.parse(json)
  u.breakdown = u.cost ? u.cost.breakdown : null
  return u
}

/** One recorded call: its `TokenUsage` JSON, parsed on first look (most results are never inspected). */
class Recorded {
  constructor(json) {
    this.json = json
    this.parsed = undefined
  }

  get value() {
    if (this.parsed === undefined) this.parsed = parseUsage(this.json)
    return this.parsed
  }
}

// ---------------------------------------------------------------------------------------------------------
// Free functions
// ---------------------------------------------------------------------------------------------------------

const DEFAULT_MODEL = 'gpt-4o'

/** Tokens of `text` (or of a chat `messages` array, with the model's per-message overhead). */
function countTokens(input, model = DEFAULT_MODEL, options = {}) {
  if (Array.isArray(input)) {
    const tools = options.tools ? JSON.stringify(options.tools) : null
    return native.countChat(model, JSON.stringify(input), tools).tokens
  }
  return native.countTokens(model, String(input)).tokens
}

/** Like `countTokens`, with whether the count is exact for the model. */
function countTokensDetailed(input, model = DEFAULT_MODEL, options = {}) {
  if (Array.isArray(input)) {
    const tools = options.tools ? JSON.stringify(options.tools) : null
    return native.countChat(model, JSON.stringify(input), tools)
  }
  return native.countTokens(model, String(input))
}

function estimateWith(target, { model, messages, tools, maxOutputTokens, expectedCacheHit }) {
  return target.estimate(
    String(model),
    typeof messages === 'string' ? messages : JSON.stringify(messages ?? []),
    tools == null ? null : typeof tools === 'string' ? tools : JSON.stringify(tools),
    count(maxOutputTokens) ?? null,
    expectedCacheHit == null ? null : String(expectedCacheHit),
  )
}

/** A count for the native side: numbers as they are, absent as undefined, anything else NaN (rejected there). */
function count(v) {
  return v == null ? undefined : typeof v === 'number' ? v : Number.NaN
}

/** A pre-flight estimate of a chat request with the embedded prices (USD). */
function estimate(request) {
  return estimateWith(native, request)
}

/** The exact cost of a given usage with the embedded prices (USD). */
function cost(usage) {
  return costWith(native, usage)
}

// ---------------------------------------------------------------------------------------------------------
// Wrapping SDK clients
// ---------------------------------------------------------------------------------------------------------

// Intercepted methods per resource path. `create`: one request whose result (or stream) is tracked.
// `helper`: an SDK helper that builds on `create`; it runs with the tracked client as its `this._client`, so
// each request it makes is tracked once, by the intercepted `create`.
const OPENAI_METHODS = {
  'chat.completions': { create: 'chat_completions', parse: 'chat_completions', stream: 'helper', runTools: 'helper' },
  responses: { create: 'responses', parse: 'responses', stream: 'helper' },
  embeddings: { create: 'embeddings' },
  images: { generate: 'images', edit: 'images' },
  'audio.transcriptions': { create: 'audio_transcription' },
  'audio.translations': { create: 'audio_transcription' },
  'audio.speech': { create: 'audio_speech' },
}

const ANTHROPIC_METHODS = {
  messages: { create: 'messages', parse: 'messages', stream: 'helper' },
  'beta.messages': { create: 'messages', parse: 'messages', stream: 'helper', toolRunner: 'helper' },
}

function prefixesOf(methods) {
  const out = new Set()
  for (const path of Object.keys(methods)) {
    const parts = path.split('.')
    for (let i = 1; i <= parts.length; i++) out.add(parts.slice(0, i).join('.'))
  }
  return out
}

const FAMILIES = {
  openai: { methods: OPENAI_METHODS, prefixes: prefixesOf(OPENAI_METHODS) },
  anthropic: { methods: ANTHROPIC_METHODS, prefixes: prefixesOf(ANTHROPIC_METHODS) },
}

function hostOf(url) {
  try {
    return new URL(url).hostname.toLowerCase()
  } catch {
    return ''
  }
}

/** `{ family, provider }` of an SDK client. */
function detectProvider(client, override) {
  const isAnthropic = client && typeof client.messages === 'object' && !('chat' in client)
  const family = isAnthropic ? 'anthropic' : 'openai'
  if (override) return { family, provider: override }
  const name = client && client.constructor ? client.constructor.name : ''
  const host = hostOf(client && client.baseURL)
  if (isAnthropic) {
    if (name === 'AnthropicBedrock' || host.includes('bedrock')) return { family, provider: 'bedrock' }
    return { family, provider: 'anthropic' }
  }
  if (name === 'AzureOpenAI' || typeof client.apiVersion === 'string') return { family, provider: 'azure' }
  // Hosts (xAI, Azure, Gemini's OpenAI endpoint) are recognised by core, the same way in every binding.
  return { family, provider: native.providerForBaseUrl(String((client && client.baseURL) || '')) }
}

function wrapClient(tracker, client, attribution, options) {
  if (!client || typeof client !== 'object') throw new TypeError('tracker.wrap() expects an openai or anthropic client')
  const { family, provider } = detectProvider(client, options.provider)
  const ctx = {
    tracker,
    client,
    family: FAMILIES[family],
    provider,
    attribution,
    attributionJson: attribution ? JSON.stringify(attribution) : null,
    runAttribution: new WeakMap(),
    deployment: provider === 'azure' && typeof client.deploymentName === 'string' ? client.deploymentName : undefined,
    proxies: new WeakMap(),
    clientProxy: undefined,
  }
  ctx.clientProxy = resourceProxy(ctx, client, '')
  return ctx.clientProxy
}

function resourceProxy(ctx, target, path) {
  const cached = ctx.proxies.get(target)
  if (cached) return cached
  const methods = ctx.family.methods[path]
  const fns = new Map()
  const proxy = new Proxy(target, {
    get(t, prop, receiver) {
      if (prop === '_client') return ctx.clientProxy
      const value = Reflect.get(t, prop, t)
      if (typeof prop !== 'string') return value
      if (typeof value === 'function') {
        if (prop === 'constructor') return value
        let fn = fns.get(prop)
        if (fn && fn.original === value) return fn
        fn = makeMethod(ctx, t, path, prop, value, methods && methods[prop], receiver)
        fn.original = value
        fns.set(prop, fn)
        return fn
      }
      if (value && typeof value === 'object') {
        const sub = path ? `${path}.${prop}` : prop
        if (ctx.family.prefixes.has(sub)) return resourceProxy(ctx, value, sub)
      }
      return value
    },
  })
  ctx.proxies.set(target, proxy)
  return proxy
}

function makeMethod(ctx, target, path, prop, original, api, proxy) {
  if (api === 'helper') {
    // With the proxy as `this`, the helper's `this._client` / `this.create` reach the tracked methods.
    return function trackedHelper(...args) {
      const collector = { target: undefined, usages: [] }
      const result = helperContext.run(collector, () => original.apply(proxy, args))
      collector.target = result
      attachHelperUsage(collector)
      return result
    }
  }
  if (api) {
    return function tracked(...args) {
      return trackedCall(ctx, api, original, target, args)
    }
  }
  if (path === '' && prop === 'withOptions') {
    // A derived client is tracked like its parent.
    return function withOptions(...args) {
      const derived = original.apply(target, args)
      return wrapClient(ctx.tracker, derived, ctx.attribution, { provider: ctx.provider })
    }
  }
  // Everything else runs on the SDK object itself (its private fields are not reachable through a Proxy).
  const bound = function (...args) {
    return original.apply(target, args)
  }
  return bound
}

/** The attribution JSON of a call: the wrap's, merged under the current `run()`'s; memoized per run. */
function attributionJson(ctx) {
  const store = ctx.tracker[CONTEXT].als.getStore()
  if (store === undefined) return ctx.attributionJson
  let json = ctx.runAttribution.get(store)
  if (json === undefined) {
    json = JSON.stringify(mergeAttribution(ctx.attribution, store))
    ctx.runAttribution.set(store, json)
  }
  return json
}

function callInfo(ctx, api, body) {
  return {
    provider: ctx.provider,
    api,
    model: ctx.deployment ?? (body.model != null ? String(body.model) : ''),
    attribution: attributionJson(ctx),
    serviceTier: ctx.family === FAMILIES.openai && typeof body.service_tier === 'string' ? body.service_tier : undefined,
  }
}

function elapsedMs(start) {
  const ms = Math.round(performance.now() - start)
  return ms > 0xffffffff ? 0xffffffff : ms
}

function trackedCall(ctx, api, original, target, args) {
  const body = args[0]
  if (!body || typeof body !== 'object' || ctx.tracker[CONTEXT].closed) return original.apply(target, args)
  const start = performance.now()
  const call = callInfo(ctx, api, body)
  const streaming = body.stream === true
  let hide = false
  let sendArgs = args
  if (streaming && api === 'chat_completions' && (body.stream_options == null || body.stream_options.include_usage == null)) {
    // Ask for the final usage chunk, and hide it from the caller who did not ask for it.
    sendArgs = [{ ...body, stream_options: { ...body.stream_options, include_usage: true } }, ...args.slice(1)]
    hide = true
  }
  const promise = original.apply(target, sendArgs)
  const state = { ctx, api, call, body, start, hide, done: false, usage: undefined, collector: helperContext.getStore() }
  return trackResult(state, promise)
}

function errorClass(err) {
  if (err && err.constructor && err.constructor.name && err.constructor.name !== 'Object') return err.constructor.name
  if (err && typeof err.status === 'number') return `http_${err.status}`
  return 'Error'
}

function recordFailure(state, err) {
  if (state.done) return
  state.done = true
  state.usage = state.ctx.tracker[FAIL](state.call, errorClass(err), elapsedMs(state.start))
  noteUsage(state)
}

function trackResult(state, promise) {
  if (!promise || typeof promise.then !== 'function') return promise
  if (typeof promise._thenUnwrap !== 'function') {
    // A plain promise (e.g. anthropic `messages.parse`): same type back.
    return promise.then(
      (data) => onResult(state, data),
      (err) => {
        recordFailure(state, err)
        throw err
      },
    )
  }
  // Provider and connection errors reject the response promise (after the SDK's retries); observing it
  // here records the failure whether or not the caller ever awaits.
  const responsePromise =
    typeof promise._responseProps === 'function' ? promise._responseProps() : promise.responsePromise
  if (responsePromise && typeof responsePromise.then === 'function') {
    responsePromise.then(undefined, (err) => recordFailure(state, err))
  }
  const tracked = promise._thenUnwrap((data) => onResult(state, data))
  const asResponse = tracked.asResponse
  if (typeof asResponse === 'function') {
    // `.asResponse()` alone never parses the body: record from a clone of it. (`withResponse()` parses,
    // and calls this after starting the parse, so it is recorded once, by `onResult`.)
    Object.defineProperty(tracked, 'asResponse', {
      configurable: true,
      writable: true,
      value: function asResponseTracked() {
        const parsing = Boolean(this.parsedPromise)
        return asResponse.call(this).then((response) => {
          if (!parsing && !state.done && response && typeof response.clone === 'function') {
            recordRawResponse(state, response.clone())
          }
          return response
        })
      },
    })
  }
  return tracked
}

/** A helper's result gets `_tokenUsage` (its last request) and `_tokenUsages` (all of them). */
function attachHelperUsage(collector) {
  const target = collector.target
  if (!target || collector.usages.length === 0) return
  attachUsage(target, collector.usages[collector.usages.length - 1])
  const all = collector.usages
  try {
    Object.defineProperty(target, '_tokenUsages', {
      get: () => all.map((r) => r.value),
      enumerable: false,
      configurable: true,
    })
  } catch {
    // Frozen: the usages are still recorded.
  }
}

function noteUsage(state) {
  if (state.collector && state.usage) {
    state.collector.usages.push(state.usage)
    attachHelperUsage(state.collector)
  }
}

/**
 * Attaches `_tokenUsage` the way the SDKs attach `_request_id`: non-enumerable, so JSON is unchanged. It is
 * a getter over the recorded JSON, parsed on first access.
 */
function attachUsage(target, recorded) {
  if (recorded && target && (typeof target === 'object' || typeof target === 'function')) {
    try {
      Object.defineProperty(target, '_tokenUsage', {
        get: () => recorded.value,
        enumerable: false,
        configurable: true,
      })
    } catch {
      // A frozen result keeps its shape; the usage is still recorded.
    }
  }
}

function isStreamObject(data) {
  return (
    data != null &&
    typeof data === 'object' &&
    typeof data[Symbol.asyncIterator] === 'function' &&
    data.controller != null &&
    typeof data.controller.abort === 'function'
  )
}

function onResult(state, data) {
  if (state.body.stream === true && isStreamObject(data)) return trackStream(state, data)
  if (!state.done) {
    state.done = true
    state.usage = state.ctx.tracker[RECORD](
      state.call,
      requestJson(state.api, state.body, false),
      responseJson(state.api, data),
      elapsedMs(state.start),
    )
    noteUsage(state)
  }
  attachUsage(data, state.usage)
  return data
}

// -- what crosses into Rust: only the keys the core parser reads ------------------------------------------

function pick(obj, keys) {
  const out = {}
  for (const k of keys) {
    if (obj[k] !== undefined) out[k] = obj[k]
  }
  return out
}

function responseJson(api, data) {
  if (data == null || typeof data !== 'object' || typeof data.clone === 'function') return '{}'
  if (data.usage == null && api !== 'images') return JSON.stringify(data) // nothing reported: the core estimates
  switch (api) {
    case 'chat_completions':
      return JSON.stringify(pick(data, ['id', 'object', 'model', 'usage', 'service_tier']))
    case 'responses': {
      const out = pick(data, ['id', 'object', 'model', 'status', 'usage', 'service_tier'])
      if (Array.isArray(data.output)) out.output = data.output.map((o) => ({ type: o && o.type }))
      return JSON.stringify(out)
    }
    case 'embeddings':
      return JSON.stringify(pick(data, ['object', 'model', 'usage']))
    case 'images': {
      const out = pick(data, ['created', 'usage', 'size', 'quality', 'background', 'output_format'])
      if (Array.isArray(data.data)) out.data = data.data.map(() => ({}))
      return JSON.stringify(out)
    }
    case 'audio_transcription':
      return JSON.stringify(pick(data, ['usage', 'duration', 'language']))
    case 'messages':
      return JSON.stringify(pick(data, ['id', 'type', 'model', 'usage', 'stop_reason']))
    default:
      return JSON.stringify(data)
  }
}

const PROMPT_KEYS = [
  'model', 'messages', 'input', 'instructions', 'system', 'tools', 'web_search_options', 'max_tokens', 'max_completion_tokens',
]

function requestJson(api, body, streaming) {
  switch (api) {
    case 'images':
      return JSON.stringify(pick(body, ['model', 'n', 'size', 'quality', 'background', 'output_format']))
    case 'audio_speech':
      return JSON.stringify(pick(body, ['model', 'input', 'voice', 'response_format', 'speed']))
    case 'audio_transcription':
      return JSON.stringify(pick(body, ['model', 'response_format', 'language']))
    default:
      // The prompt matters only when a stream may end without usage: the core then estimates it. Web-search
      // tools matter always: their search context size is priced.
      if (streaming) return JSON.stringify(pick(body, PROMPT_KEYS))
      return body && (body.tools || body.web_search_options) ? JSON.stringify(pick(body, ['model', 'tools', 'web_search_options'])) : null
  }
}

/** One stream event as the core reads it: the SSE `event:` name (the payload's `type`) and its JSON. */
function eventName(api, chunk) {
  return api === 'chat_completions' || chunk == null || typeof chunk.type !== 'string' ? null : chunk.type
}

function eventData(api, chunk) {
  if (api === 'images' && chunk && chunk.b64_json !== undefined) return JSON.stringify({ ...chunk, b64_json: undefined })
  return JSON.stringify(chunk)
}

// -- streams -----------------------------------------------------------------------------------------------

// A stream the caller never finishes iterating (never starts, or drops it) is recorded as abandoned when it
// is garbage-collected: the provider bills the request all the same.
const abandonedStreams = new FinalizationRegistry((finishStream) => finishStream(true))

/**
 * Records a stream once. Built outside `trackStream` so that, held by the registry, it reaches nothing that
 * keeps the wrapped stream alive (V8 closures share their scope's variables).
 */
function streamFinisher(tracker, ns, start, session) {
  return (aborted) => {
    if (session.finished) return undefined
    session.finished = true
    try {
      return tracker[RECORDED](ns.finish(elapsedMs(start), aborted))
    } catch (err) {
      tracker[REPORT](err, 'record')
      return undefined
    }
  }
}

function trackStream(state, stream) {
  const tracker = state.ctx.tracker
  const ns = tracker[STREAM](state.call, requestJson(state.api, state.body, true), state.hide)
  if (!ns || state.done) return stream
  state.done = true
  const session = { finished: false }
  const finishStream = streamFinisher(tracker, ns, state.start, session)
  let wrapped
  const finish = (aborted) => {
    if (session.finished) return
    abandonedStreams.unregister(session)
    const recorded = finishStream(aborted)
    if (!recorded) return
    state.usage = recorded
    attachUsage(wrapped, recorded)
    noteUsage(state)
  }
  let pushFailed = false
  const push = (chunk) => {
    if (session.finished) return false
    try {
      return ns.push(eventName(state.api, chunk), eventData(state.api, chunk))
    } catch (err) {
      // Reported once per stream; the events still reach the caller.
      if (!pushFailed) tracker[REPORT](err, 'stream')
      pushFailed = true
      return false
    }
  }
  const iterate = () => {
    const inner = stream[Symbol.asyncIterator]()
    return {
      async next() {
        for (;;) {
          let r
          try {
            r = await inner.next()
          } catch (err) {
            finish(true)
            throw err
          }
          if (r.done) {
            // The SDK ends the iteration quietly when the request was aborted.
            finish(Boolean(stream.controller.signal && stream.controller.signal.aborted))
            return r
          }
          if (!push(r.value)) return r
        }
      },
      async return(value) {
        finish(true)
        if (typeof inner.return === 'function') await inner.return(value)
        return { done: true, value }
      },
      async throw(err) {
        finish(true)
        if (typeof inner.throw === 'function') return inner.throw(err)
        throw err
      },
      [Symbol.asyncIterator]() {
        return this
      },
    }
  }
  try {
    wrapped = new stream.constructor(iterate, stream.controller, state.ctx.client)
  } catch (err) {
    // An SDK whose Stream cannot be rebuilt this way: the caller gets the stream as it was, unrecorded.
    session.finished = true
    tracker[REPORT](err, 'stream')
    return stream
  }
  abandonedStreams.register(wrapped, finishStream, session)
  return wrapped
}

/** `.asResponse()`: the caller reads the raw body; a clone of it is read here (JSON, or SSE events). */
async function recordRawResponse(state, response) {
  try {
    const type = (response.headers && response.headers.get('content-type')) || ''
    if (type.includes('text/event-stream')) {
      state.done = true
      const ns = state.ctx.tracker[STREAM](state.call, requestJson(state.api, state.body, true), false)
      if (!ns) return
      let completed = false
      try {
        for await (const ev of sseEvents(response.body)) {
          if (ev.data === '[DONE]') completed = true
          ns.push(ev.event, ev.data)
        }
        completed = completed || state.api !== 'chat_completions'
      } catch {
        completed = false
      }
      state.usage = state.ctx.tracker[RECORDED](ns.finish(elapsedMs(state.start), !completed))
      return
    }
    const data = await response.json()
    if (state.done) return
    state.done = true
    state.usage = state.ctx.tracker[RECORD](
      state.call,
      requestJson(state.api, state.body, false),
      responseJson(state.api, data),
      elapsedMs(state.start),
    )
  } catch (err) {
    state.ctx.tracker[REPORT](err, 'record')
  }
}

/** Minimal SSE reader over a web ReadableStream of bytes: yields `{ event, data }`. */
async function* sseEvents(body) {
  const decoder = new TextDecoder()
  let buffer = ''
  let event = null
  let data = []
  const flushEvent = function* () {
    if (data.length) yield { event, data: data.join('\n') }
    event = null
    data = []
  }
  for await (const bytes of body) {
    buffer += decoder.decode(bytes, { stream: true })
    let nl
    while ((nl = buffer.search(/\r\n|\n|\r/)) !== -1) {
      const line = buffer.slice(0, nl)
      buffer = buffer.slice(buffer[nl] === '\r' && buffer[nl + 1] === '\n' ? nl + 2 : nl + 1)
      if (line === '') {
        yield* flushEvent()
      } else if (line.startsWith('data:')) {
        data.push(line.slice(line[5] === ' ' ? 6 : 5))
      } else if (line.startsWith('event:')) {
        event = line.slice(line[6] === ' ' ? 7 : 6)
      }
    }
  }
  yield* flushEvent()
}

/** The `_tokenUsage` a wrapped client's result (or a finished stream) carries, if any. */
function tokenUsage(result) {
  return result != null && (typeof result === 'object' || typeof result === 'function') ? result._tokenUsage : undefined
}

module.exports = {
  Tracker,
  countTokens,
  countTokensDetailed,
  estimate,
  cost,
  tokenUsage,
}
module.exports.default = module.exports
