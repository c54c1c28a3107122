'use strict'
// `cost()` glue, on its measured fast path (the native side and the why: bindings-node/src/cost.rs). The
// counts go into one Float64Array reused by every call (JS is single-threaded and the native call is
// synchronous), the rarely given options into one object only when one is set, and the native result —
// fields separated by U+001F — is read back into the plain `CallCost` object.

const SEP = '\x1f'
/** Fixed slots of the counts array; the native side reads them in this order. */
const counts = new Float64Array(12)

/** An absent count is 0; anything but a number becomes NaN, which core refuses, naming the field. */
function count(v) {
  return v == null ? 0 : typeof v === 'number' ? v : Number.NaN
}

function optString(v) {
  return v == null ? undefined : v instanceof Date ? v.toISOString() : String(v)
}

function extrasOf(u) {
  if (u.audioSeconds == null && u.serviceTier == null && u.at == null && u.batch == null && u.regional == null) {
    return undefined
  }
  return {
    audioSeconds: optString(u.audioSeconds),
    serviceTier: optString(u.serviceTier),
    at: optString(u.at),
    batch: u.batch == null ? undefined : Boolean(u.batch),
    regional: u.regional == null ? undefined : Boolean(u.regional),
  }
}

/**
 * `exact, usd, rate, currency, model, priceVersion, uncertain(1|0)`, then component/amount pairs. Read field
 * by field with `indexOf` (measured faster than `split`, which builds an array first).
 */
function fromCompact(s) {
  let start = 0
  const field = () => {
    let end = s.indexOf(SEP, start)
    if (end < 0) end = s.length
    const value = s.slice(start, end)
    start = end + 1
    return value
  }
  const exact = field()
  const usd = field()
  const rate = field()
  const currency = field()
  const model = field()
  const priceVersion = field()
  const uncertain = field() === '1'
  const breakdown = {}
  while (start < s.length) {
    const component = field()
    breakdown[component] = field()
  }
  return { amount: Number(exact), exact, currency, usd, rate, model, priceVersion, uncertain, breakdown }
}

/** `target`: the native module (embedded prices, USD) or a NativeTracker (its prices and currency). */
function costWith(target, u) {
  // Explicit loads, not a loop over names: each stays a monomorphic property access.
  counts[0] = count(u.inputTokens)
  counts[1] = count(u.cacheReadTokens)
  counts[2] = count(u.cacheWriteTokens)
  counts[3] = count(u.cacheWrite1hTokens)
  counts[4] = count(u.outputTokens)
  counts[5] = count(u.reasoningTokens)
  counts[6] = count(u.audioInputTokens)
  counts[7] = count(u.audioOutputTokens)
  counts[8] = count(u.imageInputTokens)
  counts[9] = count(u.imageOutputTokens)
  counts[10] = count(u.webSearchRequests)
  counts[11] = count(u.inputCharacters)
  return fromCompact(target.cost(String(u.model), counts, extrasOf(u)))
}

module.exports = { costWith }
