// One process of the spend concurrency test (spend.test.mjs): `calls` concurrent chat calls billed to
// `userId` through a wrapped OpenAI client against the mock provider, on a shared store. Prints one JSON
// line: how many calls were answered, refused with `budget_exceeded`, or failed otherwise.
import OpenAI from 'openai'

import { Tracker } from '../js/index.mjs'

const [store, mockUrl, userId, calls] = process.argv.slice(2)
const errors = []
const tracker = new Tracker({ store, onError: (err, info) => errors.push(`${info.operation}: ${err.message}`) })
const client = tracker.wrap(new OpenAI({ baseURL: `${mockUrl}/v1`, apiKey: 'test', maxRetries: 0 }), { userId })

const outcomes = await Promise.allSettled(
  Array.from({ length: Number(calls) }, () =>
    client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 }),
  ),
)
const result = { ok: 0, refused: 0, other: [], errors }
for (const o of outcomes) {
  if (o.status === 'fulfilled') result.ok += 1
  else if (o.reason && o.reason.code === 'budget_exceeded') result.refused += 1
  else result.other.push(String(o.reason && o.reason.message))
}
await tracker.close()
process.stdout.write(`${JSON.stringify(result)}\n`)
