'use strict'
// The cost path: a given usage → its price through the native module. Kept apart (and small) because it is
// the measured hot path of `cost()`.

/** A count for the native side: numbers as they are, absent as undefined, anything else NaN (rejected there). */
function count(v) {
  return v == null ? undefined : typeof v === 'number' ? v : Number.NaN
}

function optString(v) {
  return v == null ? undefined : v instanceof Date ? v.toISOString() : String(v)
}

function costWith(target, u) {
  // Positional: napi reads arguments far faster than object properties.
  const json = target.cost(
    String(u.model),
    count(u.inputTokens),
    count(u.cacheReadTokens),
    count(u.cacheWriteTokens),
    count(u.cacheWrite1hTokens),
    count(u.outputTokens),
    count(u.reasoningTokens),
    count(u.audioInputTokens),
    count(u.audioOutputTokens),
    count(u.imageInputTokens),
    count(u.imageOutputTokens),
    count(u.webSearchRequests),
    count(u.inputCharacters),
    optString(u.audioSeconds),
    optString(u.serviceTier),
    optString(u.at),
    u.batch == null ? undefined : Boolean(u.batch),
    u.regional == null ? undefined : Boolean(u.regional),
  )
  return JSON.parse(json)
}

module.exports = { costWith, count, optString }
