'use strict'
// llmledger for Node: the public entry. The modules, one concept each (every count, price and record is
// computed once, in Rust — bindings-node/src):
//
// - tracker.cjs: the `Tracker` (options, reports, hooks, exit hooks);
// - context.cjs: per-request attribution (`run()`, AsyncLocalStorage);
// - wrap.cjs: tracking an SDK client at its HTTP request layer; openai.cjs / anthropic.cjs: the SDKs'
//   client facts; streams.cjs: streamed responses;
// - usage.cjs: `_tokenUsage`; estimate.cjs and cost.cjs: the free functions.

const { Tracker } = require('./tracker.cjs')
const { countTokens, countTokensDetailed, estimate, cost } = require('./estimate.cjs')
const { tokenUsage } = require('./usage.cjs')

module.exports = {
  Tracker,
  countTokens,
  countTokensDetailed,
  estimate,
  cost,
  tokenUsage,
}
module.exports.default = module.exports
