// ESM entry: the same module instance as the CommonJS entry (one Tracker class, one set of exit hooks).
import llmledger from './index.cjs'

export const { Tracker, countTokens, countTokensDetailed, estimate, cost, tokenUsage } = llmledger
export default llmledger
