'use strict'
// A recorded call as the caller sees it: `_tokenUsage` on the SDK's result is core's one record (the
// JSON of `core::record::Tracked`, snake_case like the SDKs' own `usage`), parsed as is on first look
// (most results are never inspected).

/** One recorded call: its JSON, parsed on first look. */
class Recorded {
  constructor(json) {
    this.json = json
    this.parsed = undefined
  }

  get value() {
    if (this.parsed === undefined) this.parsed = JSON.parse(this.json)
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

/** The `_tokenUsage` a wrapped client's result (or a finished stream) carries, if any. */
function tokenUsage(result) {
  return result != null && (typeof result === 'object' || typeof result === 'function') ? result._tokenUsage : undefined
}

module.exports = { Recorded, attachUsage, tokenUsage }
