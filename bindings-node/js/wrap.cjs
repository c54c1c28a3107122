'use strict'
// Tracking an SDK client at its HTTP request layer, the same way for the `openai` and Anthropic SDKs.
//
// Both SDKs are generated from one template: every API call — resources, `parse`, the `stream()` /
// `runTools()` / `toolRunner()` helpers, `withResponse()`, `asResponse()` — goes through
// `client.request(options)`, which returns an `APIPromise` holding the response promise and the parser
// of the body. `wrap` therefore makes a copy of the caller's client (`withOptions`: same class, same
// options) whose `request` is an instance-level wrapper; the caller's client is left untouched. Core
// decides from the request's method and path whether a call is tracked (`NativeClient.classify`), reads
// a few request facts, and gets the raw response body (`finish`) or the stream's bytes (streams.cjs).
// Results stay the SDK's own objects; `_tokenUsage` is attached to them, non-enumerable. Tracking never
// throws into the caller: failures go to the tracker's `onError`.
//
// Spend control (a limit or a balance exists): the request options reach the SDK as a promise that
// first runs core's `admit` on the thread pool — the call's maximum cost is reserved, or the SDK's
// promise rejects with core's `budget_exceeded` error before any HTTP request is built. Such a call
// ends with `finishAsync` / `failAsync` (its settlement or release is a store transaction, kept off the
// event loop); every other call keeps the synchronous path.

const native = require('./native.cjs')
const openai = require('./openai.cjs')
const anthropic = require('./anthropic.cjs')
const { trackRawStream, trackStream } = require('./streams.cjs')
const { CONTEXT, NATIVE, RECORDED, REPORT } = require('./symbols.cjs')
const { attachUsage, noteSignal } = require('./usage.cjs')

const SDKS = [openai, anthropic]

// `NativeCall.needs` bits and the unpriced result of `finish` / `fail` (bindings-node/src/tracker.rs).
const NEEDS_REQUEST_BODY = 1
const NEEDS_INCLUDE_USAGE = 2
const NEEDS_ADMIT = 4
const RECORDED_UNPRICED = 2

/** A tracked copy of `client`; its own copies (`withOptions`) are tracked too. */
function wrapClient(tracker, client, attribution, options) {
  const sdk = client && typeof client === 'object' && typeof client.request === 'function' && SDKS.find((s) => s.owns(client))
  if (!sdk) throw new TypeError('tracker.wrap() expects an openai or @anthropic-ai/sdk client')
  const spec = sdk.clientSpec(client)
  if (options.provider != null) spec.provider = String(options.provider)
  const ctx = {
    tracker,
    sdk,
    client: new native.NativeClient(spec),
    attribution: new native.NativeAttribution(attribution),
    // `run()` scope → the wrap's attribution under it: merged by core once per scope, not per call.
    scoped: new WeakMap(),
  }
  return install(ctx, copy(ctx, client, {}, client.withOptions))
}

function copy(ctx, client, options, withOptions) {
  return withOptions.call(client, { ...ctx.sdk.copyOptions(client), ...options })
}

function define(target, name, value) {
  Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: false })
}

function install(ctx, client) {
  const sdkRequest = client.request
  const withOptions = client.withOptions
  define(client, 'request', function request(options, remainingRetries) {
    return trackedRequest(ctx, this, sdkRequest, options, remainingRetries)
  })
  define(client, 'withOptions', function tracked(options) {
    return install(ctx, copy(ctx, this, options, withOptions))
  })
  return client
}

/** The attribution of a call made now: the wrap's, under the current `run()` scope's. */
function attributionOf(ctx) {
  const scope = ctx.tracker[CONTEXT].scopes.current()
  if (scope === undefined) return ctx.attribution
  let merged = ctx.scoped.get(scope)
  if (merged === undefined) {
    merged = ctx.attribution.overlay(scope)
    ctx.scoped.set(scope, merged)
  }
  return merged
}

function trackedRequest(ctx, client, sdkRequest, input, remainingRetries) {
  if (ctx.tracker[CONTEXT].closed) return sdkRequest.call(client, input, remainingRetries)
  // `native`: core's call in flight, until it is recorded (null for calls core does not track);
  // `admitted`: it holds a reservation (spend control), settled or released asynchronously.
  const call = { ctx, native: null, admitted: false, ending: undefined, stream: false, signal: undefined, usage: undefined }
  const options = input && typeof input.then === 'function' ? input.then((o) => begin(call, o)) : begin(call, input)
  return observe(call, sdkRequest.call(client, options, remainingRetries))
}

/** A request field by key: the JSON body's, or a multipart body's (`FormData`). */
function field(body, key) {
  return typeof body.get === 'function' ? body.get(key) : body[key]
}

/** The body as JSON text for core (a multipart body: its text fields; files never leave the process). */
function bodyJson(body) {
  if (typeof body.get === 'function' && typeof body.entries === 'function') {
    const fields = {}
    for (const [k, v] of body.entries()) if (typeof v === 'string') fields[k] = v
    return JSON.stringify(fields)
  }
  return JSON.stringify(body)
}

/**
 * Starts tracking the request `options` if core tracks it; returns the options to send, or under spend
 * control a promise of them that rejects with `budget_exceeded` when the call is refused.
 */
function begin(call, options) {
  const { ctx } = call
  try {
    if (!options || typeof options.method !== 'string' || typeof options.path !== 'string') return options
    const api = ctx.client.classify(options.method, options.path)
    const body = options.body
    if (api == null || !body || typeof body !== 'object') return options
    const model = field(body, 'model')
    const tier = field(body, 'service_tier')
    const streamOptions = field(body, 'stream_options')
    const includeUsage = streamOptions && typeof streamOptions.include_usage === 'boolean' ? streamOptions.include_usage : undefined
    call.stream = options.stream === true
    const pending = ctx.tracker[NATIVE].begin(
      ctx.client,
      api,
      options.path,
      typeof model === 'string' ? model : undefined,
      call.stream,
      typeof tier === 'string' ? tier : undefined,
      includeUsage,
      field(body, 'tools') != null || field(body, 'web_search_options') != null,
      attributionOf(ctx),
    )
    // One crossing for every answer (bits: NEEDS_REQUEST_BODY, NEEDS_INCLUDE_USAGE, NEEDS_ADMIT).
    const needs = pending.needs
    if (needs & NEEDS_REQUEST_BODY) pending.setRequestBody(bodyJson(body))
    call.signal = options.signal
    // A new body: the caller's object is never modified.
    const send =
      needs & NEEDS_INCLUDE_USAGE ? { ...options, body: { ...body, stream_options: { ...streamOptions, include_usage: true } } } : options
    if (needs & NEEDS_ADMIT) return admit(call, pending, send)
    call.native = pending
    return send
  } catch (err) {
    call.native = null
    ctx.tracker[REPORT](err, 'track')
  }
  return options
}

/**
 * Reserves the call's maximum cost before `options` are sent: the options once admitted; the refusal
 * (`budget_exceeded`) is thrown to the caller, through the SDK's promise, before any request exists.
 * Any other failure is a tracking failure: reported, and the call goes ahead untracked.
 */
function admit(call, pending, options) {
  return pending.admit().then(
    (admitted) => {
      call.native = admitted
      call.admitted = true
      return options
    },
    (err) => {
      if (err && err.code === 'budget_exceeded') throw err
      call.ctx.tracker[REPORT](err, 'admit')
      return options
    },
  )
}

/** Hooks the SDK's `APIPromise` of a call: its response, its body parser, and its raw-response paths. */
function observe(call, promise) {
  const parse = promise.parseResponse
  promise.parseResponse = (client, props) => parseTracked(call, parse, client, props)
  promise.responsePromise = promise.responsePromise.then(
    (props) => {
      if (call.native && !call.stream) readBody(call, props)
      return props
    },
    (err) => {
      // Provider and connection errors, after the SDK's retries: recorded whether or not anyone awaits.
      // Under spend control the error reaches the caller once the reservation is released.
      const ended = call.native ? end(call, 'fail', errorClass(err)) : undefined
      if (ended) return ended.then(() => Promise.reject(err))
      throw err
    },
  )
  return patchPromise(call, promise)
}

/** `asResponse()` and `_thenUnwrap()` (parse helpers, `output_text`) of this promise and those built on it. */
function patchPromise(call, promise) {
  const { asResponse, _thenUnwrap } = promise
  if (typeof asResponse === 'function') {
    define(promise, 'asResponse', function asResponseTracked() {
      // `withResponse()` parses first: the parse path records it.
      const parsing = this.parsedPromise !== undefined
      return asResponse.call(this).then((response) => {
        if (parsing || !call.native) return response
        if (call.stream) {
          const stream = startStream(call)
          if (stream) trackRawStream(call.ctx.tracker, stream, response.clone(), call.signal, call.admitted)
        } else {
          response
            .clone()
            .arrayBuffer()
            .then(
              (buffer) => end(call, 'finish', Buffer.from(buffer)),
              (err) => end(call, 'fail', errorClass(err)),
            )
        }
        return response
      })
    })
  }
  if (typeof _thenUnwrap === 'function') {
    define(promise, '_thenUnwrap', function thenUnwrap(transform) {
      return patchPromise(call, _thenUnwrap.call(this, (data, props) => attachUsage(transform(data, props), call.usage)))
    })
  }
  return promise
}

/**
 * A non-streaming response: its body goes to core as the text the SDK (or the caller) reads. The reading
 * methods of this one response are replaced by ones reading the body once and handing it to core first
 * (cheaper than a clone); `asResponse()` alone reads a clone (`patchPromise`).
 */
function readBody(call, props) {
  const { response, options } = props
  if (options.__binaryResponse || response.status === 204) {
    end(call, 'finish', '')
    return
  }
  const text = response.text
  let body
  // The body is handed on once the call is recorded (for a call under spend control, once it settled).
  const read = () => {
    body ??= text.call(response).then(
      (t) => {
        const ended = end(call, 'finish', t)
        return ended ? ended.then(() => t) : t
      },
      (err) => {
        const ended = end(call, 'fail', errorClass(err))
        if (ended) return ended.then(() => Promise.reject(err))
        throw err
      },
    )
    return body
  }
  define(response, 'text', read)
  define(response, 'json', () => read().then(JSON.parse))
  define(response, 'arrayBuffer', () => read().then((t) => new TextEncoder().encode(t).buffer))
}

async function parseTracked(call, parse, client, props) {
  const data = await parse(client, props)
  if (call.stream) {
    if (call.native && isSdkStream(data)) {
      const stream = startStream(call)
      if (stream) trackStream(call.ctx.tracker, stream, data, props.response.body, call.signal, call.admitted)
    }
    return data
  }
  // A call under spend control may still be settling (a binary body is not read through `readBody`).
  if (call.ending) await call.ending
  return attachUsage(data, call.usage)
}

/**
 * Ends core's call with `native[method](arg)` (`finish` with the body, or `fail` with the error class),
 * once; the recorded call goes through the hooks. Its record stays in core until someone looks at it
 * (`recordJson`). A call under spend control ends on the thread pool (`finishAsync` / `failAsync`): the
 * promise of its end is returned (it never rejects); otherwise undefined.
 */
function end(call, method, arg) {
  const pending = call.native
  if (!pending) return undefined
  call.native = null
  const tracker = call.ctx.tracker
  if (call.admitted) {
    const ended = method === 'finish' ? pending.finishAsync(arg) : pending.failAsync(arg)
    call.ending = ended.then(
      (json) => {
        if (json != null) noted(call, tracker[RECORDED](json))
      },
      (err) => tracker[REPORT](err, 'record'),
    )
    return call.ending
  }
  try {
    const status = method === 'finish' ? pending.finish(arg) : pending.fail(arg)
    if (status != null) noted(call, tracker[RECORDED](() => pending.recordJson(), status === RECORDED_UNPRICED))
  } catch (err) {
    tracker[REPORT](err, 'record')
  }
  return undefined
}

function noted(call, recorded) {
  call.usage = recorded
  noteSignal(call.signal, recorded)
}

function startStream(call) {
  const pending = call.native
  call.native = null
  try {
    return pending.intoStream()
  } catch (err) {
    call.ctx.tracker[REPORT](err, 'stream')
    return null
  }
}

function isSdkStream(data) {
  return data != null && typeof data.iterator === 'function' && data.controller != null
}

function errorClass(err) {
  if (err && err.constructor && err.constructor.name && err.constructor.name !== 'Object') return err.constructor.name
  if (err && typeof err.status === 'number') return `http_${err.status}`
  return 'Error'
}

module.exports = { wrapClient }
