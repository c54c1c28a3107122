'use strict'
// Streamed responses. Core reads every stream as raw bytes (`pushBytes`): the body the SDK reads (an SDK
// `Stream`), or a clone of it (a raw response read with `asResponse()`). The SDK's own `Stream` object is
// returned to the caller; its `iterator` (the one source of `for await`, `tee()` and
// `toReadableStream()`) is wrapped on the instance to skip the item core hides (the usage chunk it asked
// for) and to record the stream when it ends.
// Each stream is recorded once (core's `finish` is idempotent): at its end, when it breaks, when the
// caller stops early, or — never finished — by core when the native stream is garbage-collected with the
// SDK's (the provider bills the request all the same; the record reaches `onRecord` at the next poll).
// A stream under spend control (`admitted`) is finished on the thread pool (`finishAsync`: its
// settlement is a store transaction); the iteration ends once it is recorded.

const { RECORDED, REPORT } = require('./symbols.cjs')
const { attachUsage, noteSignal } = require('./usage.cjs')

/**
 * Records the stream once; the recorded call (or undefined) — for an `admitted` stream, a promise of it
 * (never rejecting). `signal`: the request's abort signal.
 */
function finishStream(tracker, native, aborted, signal, admitted) {
  const recorded = (json) => {
    if (json == null) return undefined
    const r = tracker[RECORDED](json)
    noteSignal(signal, r)
    return r
  }
  const failed = (err) => {
    tracker[REPORT](err, 'record')
    return undefined
  }
  if (admitted) return native.finishAsync(aborted).then(recorded, failed)
  try {
    return recorded(native.finish(aborted))
  } catch (err) {
    return failed(err)
  }
}

/**
 * Tracks the SDK `stream` (an SDK `Stream`) through core's `native` stream: core reads the response
 * `body` as the SDK does (its bytes, split by core's one SSE splitter: no JS parser or serializer per
 * event), and the SDK's iterator is wrapped to hide the item core asks to hide and to record the stream
 * when it ends. A body without an async iterator (never the case with Node's fetch) gives core no
 * bytes: the stream is then recorded from the prompt estimate.
 */
function trackStream(tracker, native, stream, body, signal, admitted) {
  // The ordinal of the SDK item core hides (the usage chunk it asked for), or -1. Core has read the
  // bytes of an item before the SDK yields it: the body hook runs first.
  let hidden = -1
  let pushFailed = false
  const push = (bytes) => {
    try {
      const n = native.pushBytes(typeof bytes === 'string' ? Buffer.from(bytes) : bytes)
      if (n >= 0) hidden = n
    } catch (err) {
      // Reported once per stream; the bytes still reach the SDK.
      if (!pushFailed) tracker[REPORT](err, 'stream')
      pushFailed = true
    }
  }
  readBodyWith(body, push)
  // Undefined, or (admitted) a promise, once `_tokenUsage` is attached.
  const finish = (aborted) => {
    const recorded = finishStream(tracker, native, aborted, signal, admitted)
    if (!admitted) {
      attachUsage(stream, recorded)
      return undefined
    }
    return recorded.then((r) => {
      attachUsage(stream, r)
    })
  }
  const iterator = stream.iterator
  stream.iterator = function trackedIterator() {
    const inner = iterator.call(this)
    let seen = 0
    const failed = (err) => {
      const finished = finish(true)
      if (finished) return finished.then(() => Promise.reject(err))
      throw err
    }
    const step = (r) => {
      if (r.done) {
        // The SDK ends the iteration quietly when the request was aborted.
        const finished = finish(Boolean(stream.controller.signal && stream.controller.signal.aborted))
        return finished ? finished.then(() => r) : r
      }
      if (seen++ !== hidden) return r
      return inner.next().then(step, failed)
    }
    return {
      next: () => inner.next().then(step, failed),
      async return(value) {
        await finish(true)
        if (typeof inner.return === 'function') await inner.return(value)
        return { done: true, value }
      },
      async throw(err) {
        await finish(true)
        if (typeof inner.throw === 'function') return inner.throw(err)
        throw err
      },
      [Symbol.asyncIterator]() {
        return this
      },
    }
  }
}

/**
 * Hands every chunk the SDK reads from `body` (its async iterator, which both SDKs read it with) to
 * `onBytes` first.
 */
function readBodyWith(body, onBytes) {
  const own = body != null ? body[Symbol.asyncIterator] : undefined
  if (typeof own !== 'function') return
  const seen = (r) => {
    if (!r.done && r.value != null) onBytes(r.value)
    return r
  }
  Object.defineProperty(body, Symbol.asyncIterator, {
    value: function bodyIterator(...args) {
      const inner = own.apply(this, args)
      return {
        next: (...a) => inner.next(...a).then(seen),
        return: (value) => (typeof inner.return === 'function' ? inner.return(value) : Promise.resolve({ done: true, value })),
        [Symbol.asyncIterator]() {
          return this
        },
      }
    },
    writable: true,
    configurable: true,
  })
}

/** `asResponse()` of a stream: the caller reads the raw body; core reads a clone of it, as bytes. */
async function trackRawStream(tracker, native, response, signal, admitted) {
  let aborted = true
  try {
    for await (const bytes of response.body) native.pushBytes(bytes)
    aborted = false
  } catch (err) {
    if (!(err && err.name === 'AbortError')) tracker[REPORT](err, 'stream')
  }
  await finishStream(tracker, native, aborted, signal, admitted)
}

module.exports = { trackStream, trackRawStream }
