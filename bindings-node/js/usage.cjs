'use strict'
// A recorded call as the caller sees it: `_tokenUsage` on the SDK's result is core's one record (the
// JSON of `core::record::Tracked`, snake_case like the SDKs' own `usage`), serialized by core and parsed
// as is on first look only (most results are never inspected).

/** One recorded call: its JSON (or the function reading it from core), parsed on first look. */
class Recorded {
  constructor(json) {
    this.json = json
    this.parsed = undefined
  }

  get value() {
    if (this.parsed === undefined) this.parsed = JSON.parse(typeof this.json === 'function' ? this.json() : this.json)
    return this.parsed
  }
}

/**
 * Attaches `_tokenUsage` the way the SDKs attach `_request_id`: non-enumerable, so JSON is unchanged. It is
 * a getter over the recorded JSON. Returns `target`.
 */
function attachUsage(target, recorded) {
  if (recorded && target && (typeof target === 'object' || typeof target === 'function')) {
    try {
      Object.defineProperty(target, '_tokenUsage', { get: () => recorded.value, enumerable: false, configurable: true })
    } catch {
      // A frozen result keeps its shape; the usage is still recorded.
    }
  }
  return target
}

// The SDKs' helpers (`stream()`, `runTools()`) send each of their requests with their own abort signal
// (`runner.controller.signal`): the last record of a request made with a signal is kept by it, so that
// `tokenUsage(runner)` finds it without the helper ever being intercepted.
const bySignal = new WeakMap()

/** Keeps `recorded` as the last record of a request sent with `signal` (when it had one). */
function noteSignal(signal, recorded) {
  if (recorded && signal && typeof signal === 'object') bySignal.set(signal, recorded)
}

/**
 * The `_tokenUsage` a wrapped client's result (or a finished stream) carries; for a helper's runner, the
 * record of its last request.
 */
function tokenUsage(result) {
  if (result == null || (typeof result !== 'object' && typeof result !== 'function')) return undefined
  if (result._tokenUsage !== undefined) return result._tokenUsage
  const signal = result.controller != null ? result.controller.signal : undefined
  const recorded = signal != null && typeof signal === 'object' ? bySignal.get(signal) : undefined
  return recorded ? recorded.value : undefined
}

module.exports = { Recorded, attachUsage, noteSignal, tokenUsage }
