'use strict'
// Streamed responses. The SDK's own `Stream` object is returned to the caller; its `iterator` (the one
// source of `for await`, `tee()` and `toReadableStream()`) is wrapped on the instance so that every event
// the SDK yields goes to core first (`pushEvent`), which may ask to hide it (the usage chunk it asked
// for). A raw response read with `asResponse()` goes to core as bytes (`pushBytes`) from a clone.
// Each stream is recorded once: at its end, when it breaks, when the caller stops early, or — never
// finished — when it is garbage-collected (the provider bills the request all the same).

const { RECORDED, REPORT } = require('./symbols.cjs')
const { attachUsage } = require('./usage.cjs')

// A stream the caller never finishes iterating (never starts, or drops it) is recorded when collected.
const abandoned = new FinalizationRegistry((finish) => finish(true))

/**
 * Records a stream once. Built apart from `trackStream` so that, held by the registry, it reaches nothing
 * that keeps the caller's stream alive (V8 closures share their scope's variables).
 */
function finisher(tracker, native, state) {
  return (aborted) => {
    if (state.finished) return undefined
    state.finished = true
    try {
      const json = native.finish(aborted)
      return json == null ? undefined : tracker[RECORDED](json)
    } catch (err) {
      tracker[REPORT](err, 'record')
      return undefined
    }
  }
}

/** Tracks the SDK `stream` (an SDK `Stream`) through core's `native` stream. */
function trackStream(tracker, native, stream) {
  const state = { finished: false, pushFailed: false }
  const finishStream = finisher(tracker, native, state)
  const finish = (aborted) => {
    if (state.finished) return
    abandoned.unregister(state)
    attachUsage(stream, finishStream(aborted))
  }
  /** true: core hides this event from the caller. */
  const push = (event) => {
    if (state.finished) return false
    try {
      // The SSE `event:` name of the SDKs' typed events is their payload's `type`.
      return native.pushEvent(typeof event.type === 'string' ? event.type : null, JSON.stringify(event))
    } catch (err) {
      // Reported once per stream; the events still reach the caller.
      if (!state.pushFailed) tracker[REPORT](err, 'stream')
      state.pushFailed = true
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
  abandoned.register(stream, finishStream, state)
}

/** `asResponse()` of a stream: the caller reads the raw body; core reads a clone of it, as bytes. */
async function trackRawStream(tracker, native, response) {
  let aborted = true
  try {
    for await (const bytes of response.body) native.pushBytes(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    aborted = false
  } catch (err) {
    if (!(err && err.name === 'AbortError')) tracker[REPORT](err, 'stream')
  }
  finisher(tracker, native, { finished: false })(aborted)
}

module.exports = { trackStream, trackRawStream }
