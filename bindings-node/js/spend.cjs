'use strict'
// Spend control from Node: `tracker.budgets` (limits) and `tracker.balances` (prepaid credit). Only
// argument shaping lives here — camelCase keys to core's, amounts to decimal strings — and parsing the
// JSON core answers with; every rule and check is core's (bindings-node/src/spend.rs → core/src/spend/).
// Each method is one store transaction on the thread pool, so each returns a promise.

const { NATIVE, SPEND } = require('./symbols.cjs')

// The caller's scope and account keys → core's.
const KEYS = { userId: 'user_id', workspaceId: 'workspace_id' }

/** A scope as core reads it: `{ userId, workspaceId, project, tags: { name }, 'tag:name' }` → snake keys. */
function scopeOf(scope) {
  if (scope == null) return undefined
  const out = {}
  for (const [k, v] of Object.entries(scope)) {
    if (v == null) continue
    if (k === 'tags' && typeof v === 'object') {
      for (const [t, tv] of Object.entries(v)) if (tv != null) out[`tag:${t}`] = String(tv)
    } else {
      // Other keys go as given: core names an unknown one in its error.
      out[KEYS[k] ?? k] = String(v)
    }
  }
  return out
}

/** An account: `'u1'` (a user), `'workspace_id=w1'`, or `{ userId }` / `{ workspaceId }`. */
function accountOf(account) {
  if (account != null && typeof account === 'object') return scopeOf(account)
  return String(account)
}

/** An amount as an exact decimal string (a number by its shortest round-trip text: prefer strings). */
function decimalOf(v) {
  return typeof v === 'string' ? v : String(v)
}

function isoOf(v) {
  if (v == null) return undefined
  return v instanceof Date ? v.toISOString() : String(v)
}

/** The tracker's native spend handle, made on first use (`unsupported` when the store cannot hold it). */
function nativeSpend(tracker) {
  return (tracker[SPEND] ??= tracker[NATIVE].spend())
}

/** Limits on spend, requests or tokens per minute, day or month: `tracker.budgets`. */
class Budgets {
  constructor(tracker) {
    this.tracker = tracker
  }

  /** Creates or updates the limit of (scope, per, metric); the stored limit. */
  async setLimit({ scope, per, amount, currency, requests, tokens, action, thresholds, timezone } = {}) {
    const input = {
      scope: scopeOf(scope),
      per: String(per),
      amount: amount == null ? undefined : decimalOf(amount),
      currency: currency == null ? undefined : String(currency),
      requests: requests == null ? undefined : Number(requests),
      tokens: tokens == null ? undefined : Number(tokens),
      action: action == null ? undefined : String(action),
      thresholds: thresholds == null ? undefined : Array.from(thresholds, decimalOf),
      timezone: timezone == null ? undefined : String(timezone),
    }
    return JSON.parse(await nativeSpend(this.tracker).setLimit(input))
  }

  /** Every limit, or those of exactly `scope`. */
  async limits(scope) {
    return JSON.parse(await nativeSpend(this.tracker).limits(scopeOf(scope)))
  }

  /** Removes a limit by id: false when there was none. */
  async remove(id) {
    return JSON.parse(await nativeSpend(this.tracker).removeLimit(String(id)))
  }

  /** The limits (of exactly `scope`) with their use this period: `{ limit, period, used, reserved, remaining }`. */
  async status(scope) {
    return JSON.parse(await nativeSpend(this.tracker).status(scopeOf(scope)))
  }
}

/** Prepaid credit per user or workspace: `tracker.balances`. */
class Balances {
  constructor(tracker) {
    this.tracker = tracker
  }

  /** Adds credit bought by the account holder, once per `idempotencyKey`; the entry (a replay: the first). */
  async topUp(account, amount, options = {}) {
    return this.credit(account, amount, options, 'top_up')
  }

  /** Adds free credit given by the operator, as `topUp`. */
  async grant(account, amount, options = {}) {
    return this.credit(account, amount, options, 'grant')
  }

  /** @private */
  async credit(account, amount, { idempotencyKey, expiresAt, currency, note } = {}, kind) {
    const input = {
      account: accountOf(account),
      amount: decimalOf(amount),
      kind,
      idempotencyKey: idempotencyKey == null ? undefined : String(idempotencyKey),
      expiresAt: isoOf(expiresAt),
      currency: currency == null ? undefined : String(currency),
      note: note == null ? undefined : String(note),
    }
    return JSON.parse(await nativeSpend(this.tracker).credit(input))
  }

  /** The balance now: `{ account, exists, currency, total, reserved, available, low_alert }`, exact decimal strings. */
  async get(account) {
    return JSON.parse(await nativeSpend(this.tracker).balance(accountOf(account)))
  }

  /** The account's entries, newest first (`limit`, default 100; `before`: an entry id). */
  async history(account, { limit, before } = {}) {
    const input = {
      account: accountOf(account),
      limit: limit == null ? undefined : Number(limit),
      before: before == null ? undefined : Number(before),
    }
    return JSON.parse(await nativeSpend(this.tracker).history(input))
  }

  /** A `balance_low` alert when a settlement takes the balance below `below` (null turns it off). */
  async setAlert(account, { below } = {}) {
    await nativeSpend(this.tracker).setBalanceAlert(accountOf(account), below == null ? undefined : decimalOf(below))
  }
}

module.exports = { Budgets, Balances }
