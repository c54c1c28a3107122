// Shared test set-up: the mock provider server (tests/mock_provider/server.py, shared with the Python
// suite), a tracker over a real SQLite ledger in a temp dir, and the official SDK clients pointed at the mock.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'

import { Tracker } from '../js/index.mjs'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const VECTORS_DIR = process.env.LLMLEDGER_VECTORS_DIR || join(ROOT, 'tests', 'vectors')

/** Starts the mock server on a free port; resolves to `{ url, port, stop(), requests(), clearRequests() }`. */
export async function startMock() {
  const script = process.env.LLMLEDGER_MOCK_SERVER || join(ROOT, 'tests', 'mock_provider', 'server.py')
  const child = spawn('python3', [script, '--port', '0', '--vectors', VECTORS_DIR], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout })
  const port = await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`mock server exited early (${code})`)))
    lines.once('line', (line) => {
      const m = /^PORT (\d+)$/.exec(line.trim())
      if (m) resolve(Number(m[1]))
      else reject(new Error(`unexpected first line from the mock server: ${line}`))
    })
  })
  child.removeAllListeners('exit')
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    port,
    async requests() {
      return (await fetch(`${url}/_mock/requests`)).json()
    },
    async clearRequests() {
      await fetch(`${url}/_mock/requests`, { method: 'DELETE' })
    },
    stop() {
      lines.close()
      child.kill('SIGTERM')
    },
  }
}

/** A tracker over a fresh SQLite ledger; `cleanup()` closes it and removes the directory. */
export function makeTracker(options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'llmledger-node-'))
  const warnings = []
  const tracker = new Tracker({
    store: `sqlite://${join(dir, 'ledger.db')}`,
    onError: (err, info) => warnings.push({ err, info }),
    ...options,
  })
  return {
    tracker,
    dir,
    warnings,
    async cleanup() {
      await tracker.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export function openaiClient(mock, options = {}) {
  return new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'test', maxRetries: 0, ...options })
}

export function anthropicClient(mock, options = {}) {
  return new Anthropic({ baseURL: mock.url, apiKey: 'test', maxRetries: 0, ...options })
}

/** Request options selecting a mock case (`no_usage`, `sse_error`, `disconnect`, `status_429`, a vector name). */
export function mockCase(name, extra = {}) {
  return { headers: { 'x-mock-case': name }, ...extra }
}

export const CHAT_MESSAGES = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello.' },
]

/** `promise`, or a rejection naming `what` after `ms`: every wait in the tests is bounded. */
export function withTimeout(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Collects recorded calls (`onRecord`) and lets a test wait for the n-th one — an event, not a polling
 * window: `const rec = recorder(); makeTracker({ onRecord: rec.onRecord }); await rec.count(1)`.
 */
export function recorder() {
  const seen = []
  const waiters = []
  return {
    seen,
    onRecord(u) {
      seen.push(u)
      for (const w of waiters.splice(0)) {
        if (seen.length >= w.n) w.resolve(seen)
        else waiters.push(w)
      }
    },
    count(n, ms = 10_000) {
      if (seen.length >= n) return Promise.resolve(seen)
      return withTimeout(new Promise((resolve) => waiters.push({ n, resolve })), ms, `${n} recorded call(s)`)
    },
  }
}
