'use strict'
// The tracker's internal members the SDK wrappers use (symbols: not part of the public object).

module.exports = {
  NATIVE: Symbol('llmledger.native'),
  CONTEXT: Symbol('llmledger.context'),
  RECORDED: Symbol('llmledger.recorded'),
  REPORT: Symbol('llmledger.report'),
  NOTICES: Symbol('llmledger.notices'),
  SPEND: Symbol('llmledger.spend'),
}
