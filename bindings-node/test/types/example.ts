// A small typed program checked with `tsc --noEmit` (npm run typecheck): the public API as a TypeScript
// user sees it, with both official SDKs.
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'

import llmledger, {
  Tracker,
  cost,
  countTokens,
  estimate,
  tokenUsage,
  type AlertEvent,
  type Balance,
  type BudgetExceededError,
  type CallCost,
  type Limit,
  type LimitStatus,
  type LlmledgerError,
  type TokenUsage,
  type UsageRow,
  type WithTokenUsage,
} from 'llmledger'

async function main(): Promise<void> {
  const tracker = new Tracker({
    store: 'sqlite:///tmp/llmledger-example.db',
    currency: 'KRW',
    rates: { KRW: '1391.50' },
    timezone: 'Asia/Seoul',
    unknownModel: 'flag',
    durability: 'batch',
    onError: (err: LlmledgerError | Error, info) => console.error(info.operation, err.message),
    spend: { reservationTtlSecs: 600, defaultMaxOutputTokens: 4096, unpriced: 'reserve:0.50', spikeFactor: '3' },
    webhooks: [{ url: 'https://example.com/hooks/llmledger', secret: 'whsec_x' }],
    onAlert: (alert: AlertEvent) => console.log(alert.kind, alert.alert_id, alert.amount, alert.limit),
    alertPollMs: 5000,
  })

  // Spend control: limits and prepaid balances; a refused call throws before any request is sent.
  const limit: Limit = await tracker.budgets.setLimit({ scope: { userId: 'u1' }, per: 'day', amount: '5.00', action: 'block' })
  await tracker.budgets.setLimit({ scope: { tags: { team: 'a' }, 'tag:env': 'prod' }, per: 'minute', requests: 60 })
  const statuses: LimitStatus[] = await tracker.budgets.status({ userId: 'u1' })
  const removed: boolean = await tracker.budgets.remove(limit.id)
  await tracker.balances.topUp('u1', '20.00', { idempotencyKey: 'stripe_evt_123', expiresAt: new Date() })
  await tracker.balances.grant({ workspaceId: 'w1' }, 5)
  const balance: Balance = await tracker.balances.get('u1')
  const available: string = balance.available
  const entries = await tracker.balances.history('u1', { limit: 10 })
  await tracker.balances.setAlert('u1', { below: '1.00' })
  const today: UsageRow[] = await tracker.usage({ userId: 'u1', timeframe: 'today' })
  const refused = (err: unknown): string | undefined => {
    const e = err as BudgetExceededError
    return e.code === 'budget_exceeded' ? `${e.rule} ${e.requested} > ${e.limit} - ${e.reserved} (${e.budget.rule_id})` : undefined
  }

  const openai: OpenAI = tracker.wrap(new OpenAI({ apiKey: 'x' }), { userId: 'u1', workspaceId: 'w1', project: 'chat' })
  const r = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
  const content: string | null = r.choices[0].message.content
  const usage: TokenUsage | undefined = tokenUsage(r)
  const viaProperty: TokenUsage | undefined = (r as typeof r & WithTokenUsage)._tokenUsage
  const total: string | undefined = usage?.cost?.total
  const inputTokens: number | undefined = viaProperty?.input_tokens

  const { data, response } = await openai.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse()
  const status: number = response.status

  const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages: [], stream: true })
  for await (const chunk of stream) chunk.choices[0]?.delta.content
  const streamUsage = tokenUsage(stream)

  const anthropic: Anthropic = tracker.wrap(new Anthropic({ apiKey: 'x' }), { userId: 'u2' })
  const m = await anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [] })
  const final = await anthropic.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [] }).finalMessage()

  const answer: Promise<number> = tracker.run({ userId: 'u3', tags: { feature: 'x' } }, async () => 42)
  const rows: UsageRow[] = await tracker.usage({ userId: 'u1', since: new Date(0), groupBy: ['model', 'day'] })
  const first: string | undefined = rows[0]?.model
  await tracker.flush()
  await tracker.close()

  const n: number = countTokens('text', 'gpt-4o')
  const est = estimate({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], maxOutputTokens: 100 })
  const max: string = est.maxCost.exact
  const c: CallCost = cost({ model: 'gpt-4o', inputTokens: 1000, outputTokens: 200, at: new Date() })
  const same: typeof cost = llmledger.cost

  // @ts-expect-error unknownModel only accepts 'error' | 'flag'
  new Tracker({ unknownModel: 'ignore' })
  // @ts-expect-error per is minute, day or month
  void tracker.budgets.setLimit({ per: 'week', amount: '1' })
  console.log(statuses, removed, available, entries[0]?.kind, today.length, refused(null))

  console.log(content, total, inputTokens, data.id, status, streamUsage, m.id, final.id, answer, first, n, max, c.exact, same)
}

void main
