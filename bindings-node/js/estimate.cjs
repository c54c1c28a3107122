'use strict'
// Local token counts and pre-flight estimates (the free functions and the tracker's `estimate`).

const native = require('./native.cjs')
const { costWith } = require('./cost.cjs')

/** An optional count for the native side: absent stays absent, a non-number becomes NaN (core names it). */
function count(v) {
  return v == null ? undefined : typeof v === 'number' ? v : Number.NaN
}

const DEFAULT_MODEL = 'gpt-4o'

/** Like `countTokens`, with whether the count is exact for the model. */
function countTokensDetailed(input, model = DEFAULT_MODEL, options = {}) {
  if (Array.isArray(input)) {
    const tools = options.tools ? JSON.stringify(options.tools) : null
    return native.countChat(model, JSON.stringify(input), tools)
  }
  return native.countTokens(model, String(input))
}

/** Tokens of `text` (or of a chat `messages` array, with the model's per-message overhead). */
function countTokens(input, model = DEFAULT_MODEL, options = {}) {
  return countTokensDetailed(input, model, options).tokens
}

function estimateWith(target, { model, messages, tools, maxOutputTokens, expectedCacheHit }) {
  return target.estimate({
    model: String(model),
    messagesJson: typeof messages === 'string' ? messages : JSON.stringify(messages ?? []),
    toolsJson: tools == null ? undefined : typeof tools === 'string' ? tools : JSON.stringify(tools),
    maxOutputTokens: count(maxOutputTokens),
    expectedCacheHit: expectedCacheHit == null ? undefined : String(expectedCacheHit),
  })
}

/** A pre-flight estimate of a chat request with the embedded prices (USD). */
function estimate(request) {
  return estimateWith(native, request)
}

/** The exact cost of a given usage with the embedded prices (USD). */
function cost(usage) {
  return costWith(native, usage)
}

module.exports = { count, countTokens, countTokensDetailed, estimate, estimateWith, cost }
