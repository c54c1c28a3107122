// The Node half of the demo: the official `openai` and `@anthropic-ai/sdk` clients, wrapped by a tracker,
// talk real HTTP to the local mock provider (no API keys); each response carries its exact cost, and the
// ledger answers a per-user report. Then spend control: a user with a little prepaid credit runs out and
// is refused before the call is sent.
//
//   node bindings-node/examples/demo.mjs [--store sqlite:///tmp/demo.db] [--currency KRW --rate 1391.50]
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'

import { Tracker, estimate } from '../js/index.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const { values: opts } = parseArgs({
  options: { store: { type: 'string' }, currency: { type: 'string' }, rate: { type: 'string' } },
})

async function startMock() {
  const child = spawn('python3', [join(ROOT, 'tests', 'mock_provider', 'server.py'), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const line = await new Promise((resolve, reject) => {
    child.once('error', reject)
    createInterface({ input: child.stdout }).once('line', resolve)
  })
  const port = Number(/^PORT (\d+)/.exec(line)[1])
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') }
}

const dir = mkdtempSync(join(tmpdir(), 'llmledger-demo-'))
const mock = await startMock()
const currency = opts.currency || 'USD'
const tracker = new Tracker({
  store: opts.store || `sqlite://${join(dir, 'demo.db')}`,
  currency,
  rates: opts.rate ? { [currency]: opts.rate } : undefined,
})

try {
  const openai = tracker.wrap(new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'demo' }), { project: 'demo' })
  const anthropic = tracker.wrap(new Anthropic({ baseURL: mock.url, apiKey: 'demo' }), { project: 'demo' })
  const messages = [{ role: 'user', content: 'Say hello.' }]

  const pre = estimate({ model: 'gpt-4o', messages, maxOutputTokens: 256 })
  console.log(`estimate before sending: ${pre.inputTokens} prompt tokens, $${pre.minCost.exact} … $${pre.maxCost.exact}`)

  const rows = []
  const show = (label, u) =>
    rows.push({
      call: label,
      user: u.user_id,
      model: u.model,
      input: u.input_tokens,
      cached: u.cache_read_tokens,
      'cache write': u.cache_write_tokens,
      output: u.output_tokens,
      source: u.usage_source,
      cost: u.cost ? `${u.cost.total} ${u.cost.currency}` : `unpriced (${u.pricing_error?.code})`,
    })

  await tracker.run({ userId: 'alice' }, async () => {
    const r = await openai.chat.completions.create({ model: 'gpt-4o', messages })
    show('openai chat', r._tokenUsage)
    const s = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    for await (const _ of s);
    show('openai chat stream', s._tokenUsage)
  })
  await tracker.run({ userId: 'bob' }, async () => {
    const r = await openai.responses.create({ model: 'gpt-5', input: 'Say hello.' })
    show('openai responses', r._tokenUsage)
    const m = await anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 256, messages })
    show('anthropic messages', m._tokenUsage)
    const s = await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 256, messages, stream: true })
    for await (const _ of s);
    show('anthropic stream', s._tokenUsage)
  })
  console.table(rows)

  const report = await tracker.usage({ groupBy: ['user', 'model'] })
  console.table(
    report.map((r) => ({
      user: r.user,
      model: r.model,
      requests: r.requests,
      input: r.input_tokens,
      cached: r.cache_read_tokens,
      output: r.output_tokens,
      [`cost (${r.currency})`]: r.cost,
    })),
  )

  // Spend control: dana has 0.002 of prepaid credit. Each call reserves its worst case (the prompt plus
  // max_tokens) before it is sent and settles to its exact cost; the call that no longer fits is refused
  // with `budget_exceeded` (OpenAI's `insufficient_quota`, but before the request) — the provider never sees it.
  const providerRequests = async () => (await (await fetch(`${mock.url}/_mock/requests`)).json()).length
  await tracker.balances.topUp('dana', '0.002', { idempotencyKey: 'demo-dana-top-up' })
  const dana = tracker.wrap(new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'demo' }), { userId: 'dana', project: 'demo' })
  for (let i = 1; i <= 3; i++) {
    const seen = await providerRequests()
    try {
      const r = await dana.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 100 })
      const b = await tracker.balances.get('dana')
      console.log(`dana, call ${i}: answered, cost ${r._tokenUsage.cost.total}; balance now ${b.total} ${b.currency}`)
    } catch (err) {
      if (err.code !== 'budget_exceeded') throw err
      console.log(
        `dana, call ${i}: refused before sending (${err.code}, rule ${err.rule}: needs up to ${err.requested}, ` +
          `balance ${err.limit} ${err.currency}); requests the provider received for it: ${(await providerRequests()) - seen}`,
      )
    }
  }
} finally {
  await tracker.close()
  mock.stop()
  rmSync(dir, { recursive: true, force: true })
}
