'use strict'
// Streamed responses. The SDK's own `Stream` object is returned to the caller; its `iterator` (the one
// source of `for await`, `tee()` and `toReadableStream()`) is wrapped on the instance so that every event
// the SDK yields goes to core first (`pushEvent`), which may ask to hide it (the usage chunk it asked
// for). A raw response read with `asResponse()` goes to core as bytes (`pushBytes`) from a clone.
// Each stream is recorded once (core's `finish` is idempotent): at its end, when it breaks, when the
// caller stops early, or — never finished — by core when the native stream is garbage-collected with the
// SDK's (the provider bills the request all the same; the record reaches `onRecord` at the next poll).

const { RECORDED, REPORT } = require('./symbols.cjs')
const { attachUsage, noteSignal } = require('./usage.cjs')

/** Records the stream once; the recorded call (or undefined). `signal`: the request's abort signal. */
function finishStream(tracker, native, aborted, signal) {
  try {
    const json = native.finish(aborted)
    if (json == null) return undefined
    const recorded = tracker[RECORDED](json)
    noteSignal(signal, recorded)
    return recorded
  } catch (err) {
    tracker[REPORT](err, 'record')
    return undefined
  }
}

/** Tracks the SDK `stream` (an SDK `Stream`) through core's `native` stream. */
function trackStream(tracker, native, stream, signal) {
  let pushFailed = false
  const finish = (aborted) => attachUsage(stream, finishStream(tracker, native, aborted, signal))
  /** true: core hides this event from the caller. */
  const push = (event) => {
    try {
      // The SSE `event:` name of the SDKs' typed events is their payload's `type`.
      return native.pushEvent(typeof event.type === 'string' ? event.type : null, JSON.stringify(event))
    } catch (err) {
      // Reported once per stream; the events still reach the caller.
      if (!pushFailed) tracker[REPORT](err, 'stream')
      pushFailed = true
      return false
    }
  }
  const iterator = stream.iterator
  stream.iterator = function trackedIterator() {
    const inner = iterator.call(this)
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
}

/** `asResponse()` of a stream: the caller reads the raw body; core reads a clone of it, as bytes. */
async function trackRawStream(tracker, native, response, signal) {
  let aborted = true
  try {
    for await (const bytes of response.body) native.pushBytes(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    aborted = false
  } catch (err) {
    if (!(err && err.name === 'AbortError')) tracker[REPORT](err, 'stream')
  }
  finishStream(tracker, native, aborted, signal)
}

module.exports = { trackStream, trackRawStream }
