'use strict'
// The `Tracker` class: options in, reports out, the process exit hooks, and the one place recorded calls
// reach the caller's hooks (`onRecord`, `onError`). Every count, price and record is computed in Rust.

const native = require('./native.cjs')
const { Context, normalizeAttribution, overlay, stringValues } = require('./context.cjs')
const { costWith } = require('./cost.cjs')
const { count, countTokens, estimateWith } = require('./estimate.cjs')
const { NATIVE, CONTEXT, RECORDED, REPORT, NOTICES } = require('./symbols.cjs')
const { Budgets, Balances } = require('./spend.cjs')
const { Recorded } = require('./usage.cjs')
const { wrapClient } = require('./wrap.cjs')

// ---------------------------------------------------------------------------------------------------------
// Exit hooks: flush on `beforeExit` (asynchronous work is still possible), close on `exit` (synchronous).
// ---------------------------------------------------------------------------------------------------------

const liveTrackers = new Set()
let exitHooksInstalled = false

function installExitHooks() {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  process.on('beforeExit', () => {
    // Only trackers with records since their last flush: the next `beforeExit` then finds none and the
    // process can end.
    for (const t of liveTrackers) {
      if (t[CONTEXT].dirty) t.flush().catch((err) => t[REPORT](err, 'flush'))
    }
  })
  process.on('exit', () => {
    for (const t of liveTrackers) {
      try {
        t[NATIVE].closeSync()
      } catch (err) {
        t[REPORT](err, 'close')
      }
    }
    liveTrackers.clear()
  })
}

function nativeOptions(o) {
  const out = {}
  for (const k of ['store', 'currency', 'timezone', 'unknownModel', 'durability', 'pricesPath', 'litellmPricesPath', 'spillDir']) {
    if (o[k] != null) out[k] = String(o[k])
  }
  if (o.rates) out.rates = stringValues(o.rates)
  if (o.azureDeployments) out.azureDeployments = stringValues(o.azureDeployments)
  // Spend control and alert delivery: core's `TrackerOptions`, one JSON object read (and checked) by core.
  const core = {}
  if (o.spend) core.spend = snakeKeys(o.spend)
  if (o.webhooks) core.webhooks = Array.from(o.webhooks, snakeKeys)
  if (o.alertPollMs != null) core.alert_poll_ms = o.alertPollMs
  if (Object.keys(core).length > 0) out.optionsJson = JSON.stringify(core)
  return out
}

/** `{ reservationTtlSecs: 5 }` → `{ reservation_ttl_secs: 5 }`: the caller's keys as core names them. */
function snakeKeys(obj) {
  const out = {}
  for (const [k, v] of Object.entries(obj || {})) out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = v
  return out
}

function isoOrUndefined(v) {
  if (v == null) return undefined
  if (v instanceof Date) return v.toISOString()
  return String(v)
}

function nativeQuery(q) {
  const out = {}
  for (const k of ['userId', 'workspaceId', 'project', 'provider', 'model', 'sessionId', 'timezone', 'timeframe']) {
    if (q[k] != null) out[k] = String(q[k])
  }
  out.since = isoOrUndefined(q.since)
  out.until = isoOrUndefined(q.until)
  if (q.groupBy != null) out.groupBy = Array.isArray(q.groupBy) ? q.groupBy.map(String) : [String(q.groupBy)]
  if (q.p95 != null) out.p95 = Boolean(q.p95)
  return out
}

function defaultOnError(err, info) {
  const code = err && err.code ? err.code : 'tracking_failed'
  const message = err && err.message ? err.message : String(err)
  process.emitWarning(`llmledger: ${info.operation} failed: ${message}`, { type: 'LlmledgerWarning', code })
}

/** The default route of a ledger notice: warnings as process warnings, the rest on the console. */
function defaultOnNotice(notice) {
  if (notice.level === 'warning') {
    process.emitWarning(notice.message, { type: 'LlmledgerWarning', code: `LLMLEDGER_${notice.kind.toUpperCase()}` })
  } else {
    console.info(notice.message)
  }
}

/** How often a tracker looks for ledger notices (core decides what and when; this only delivers). */
const NOTICE_POLL_MS = 1000

class Tracker {
  /**
   * @param {object} [options] see index.d.ts (`TrackerOptions`).
   */
  constructor(options = {}) {
    const { onError, onRecord, onNotice, onAlert, ...rest } = options
    this[NATIVE] = new native.NativeTracker(nativeOptions(rest))
    this[CONTEXT] = {
      scopes: new Context(),
      onError: typeof onError === 'function' ? onError : defaultOnError,
      // A caller's onError also hears ledger warnings; the default one would repeat the notice's warning.
      noticeOnError: typeof onError === 'function',
      onRecord: typeof onRecord === 'function' ? onRecord : null,
      onNotice: typeof onNotice === 'function' ? onNotice : defaultOnNotice,
      reportUnpriced: this[NATIVE].unknownModel === 'error',
      dirty: false,
      closed: false,
    }
    if (typeof onAlert === 'function') {
      // Called by core's alert pump through a weak threadsafe function, on this thread; a throwing (or
      // rejecting) callback goes to onError.
      this[NATIVE].setAlertSink((json) => {
        try {
          const r = onAlert(JSON.parse(json))
          if (r && typeof r.then === 'function') r.then(undefined, (err) => this[REPORT](err, 'onAlert'))
        } catch (err) {
          this[REPORT](err, 'onAlert')
        }
      })
    }
    // Unref'd: it never keeps the process alive.
    this[CONTEXT].noticeTimer = setInterval(() => this[NOTICES](), NOTICE_POLL_MS).unref()
    liveTrackers.add(this)
    installExitHooks()
  }

  /**
   * The ledger's state, cheap enough for a `/health` endpoint (see `LedgerHealth` in index.d.ts). Delivers
   * any pending ledger notice first.
   */
  health() {
    this[NOTICES]()
    return JSON.parse(this[NATIVE].healthJson())
  }

  /**
   * Hands the ledger's notices to `onNotice` (warnings also to `onError` when one is set), and the records
   * of streams core recorded when they were collected unfinished to the record hooks.
   */
  [NOTICES]() {
    for (const json of this[NATIVE].takeDropped()) this[RECORDED](json)
    for (const notice of JSON.parse(this[NATIVE].takeNoticesJson())) {
      if (notice.level === 'warning' && this[CONTEXT].noticeOnError) {
        const err = new Error(notice.message)
        err.code = 'store'
        this[CONTEXT].onError(err, { operation: 'ledger', notice })
      }
      this[CONTEXT].onNotice(notice)
    }
  }

  /** Limits on spend, requests or tokens (spend control; see the README's "Spend control"). */
  get budgets() {
    return (this[CONTEXT].budgets ??= new Budgets(this))
  }

  /** Prepaid credit per user or workspace (spend control). */
  get balances() {
    return (this[CONTEXT].balances ??= new Balances(this))
  }

  /** ISO 4217 code of the costs this tracker reports. */
  get currency() {
    return this[NATIVE].currency
  }

  /** Returns a tracked copy of an `openai` or `@anthropic-ai/sdk` client (the caller's is left untouched). */
  wrap(client, attribution, options) {
    return wrapClient(this, client, normalizeAttribution(attribution), options || {})
  }

  /** Runs `fn` with `attribution` applied to every tracked call made inside it (nested runs merge). */
  run(attribution, fn) {
    return this[CONTEXT].scopes.run(attribution, fn)
  }

  /** The attribution of the current `run()` context, if any. */
  currentAttribution() {
    const a = this[CONTEXT].scopes.current()
    return a ? a.toObject() : undefined
  }

  /** A usage report from the ledger (everything recorded so far is flushed first). */
  async usage(query = {}) {
    if (this[CONTEXT].dirty) await this.flush()
    return JSON.parse(await this[NATIVE].usage(nativeQuery(query)))
  }

  /**
   * What the ledger tracked against what the providers billed (cost reports pulled into the same store with
   * `llmledger pull`), per group. `since` / `until`: UTC days, inclusive (`'2026-11-01'` or a Date; `until`
   * defaults to today); `by`: any of 'day', 'provider', 'model', 'workspace'; `thresholdPct` (default 5).
   * Rows: the group keys, `tracked_usd`, `billed_usd`, `diff_usd`, `diff_pct` (decimal strings), `flagged`, `cause`.
   */
  async reconcile({ since, until, by, thresholdPct } = {}) {
    const day = (d) => (d instanceof Date ? d.toISOString().slice(0, 10) : d)
    const query = { since: day(since), until: day(until) ?? null }
    if (by !== undefined) query.by = typeof by === 'string' ? [by] : by
    if (thresholdPct !== undefined) query.threshold_pct = String(thresholdPct)
    if (this[CONTEXT].dirty) await this.flush()
    return JSON.parse(await this[NATIVE].reconcile(JSON.stringify(query)))
  }

  /** Waits until every event recorded so far is stored. */
  async flush() {
    this[CONTEXT].dirty = false
    try {
      await this[NATIVE].flush()
    } finally {
      this[NOTICES]()
    }
  }

  /** Flushes and closes the ledger; later calls through wrapped clients still work but are not recorded. */
  async close() {
    if (this[CONTEXT].closed) return
    this[CONTEXT].closed = true
    clearInterval(this[CONTEXT].noticeTimer)
    liveTrackers.delete(this)
    try {
      await this[NATIVE].close()
    } finally {
      this[NOTICES]()
      // Alerts delivered by the close are queued to this thread already; the sink (which holds onAlert,
      // and through it this tracker) is let go.
      try {
        this[NATIVE].setAlertSink(null)
      } catch {
        // No spend control: there was no sink.
      }
    }
  }

  /** Records a call made outside a wrapped client, from its response body. */
  record({ provider, api, model, response, request, latencyMs, attribution }) {
    const input = {
      provider: String(provider),
      api: String(api),
      model: String(model),
      requestJson: request == null ? undefined : typeof request === 'string' ? request : JSON.stringify(request),
      responseJson: typeof response === 'string' ? response : JSON.stringify(response),
      latencyMs: count(latencyMs),
    }
    const json = this[NATIVE].recordResponse(input, overlay(this[CONTEXT].scopes.current(), attribution))
    // Through the same hook as the wrappers: onRecord fires, and unknownModel: 'error' reports.
    return this[RECORDED](json).value
  }

  /** A pre-flight estimate in this tracker's currency. */
  estimate(request) {
    return estimateWith(this[NATIVE], request)
  }

  /** The cost of a given usage with this tracker's prices, in its currency. */
  cost(usage) {
    return costWith(this[NATIVE], usage)
  }

  countTokens(input, model) {
    return countTokens(input, model)
  }

  /**
   * A recorded call → `Recorded`, through the caller's hooks. `json`: its `TokenUsage` JSON, or a function
   * reading it from core (a wrapped call's record is serialized only when looked at); `unpriced`: it has
   * a pricing error.
   */
  [RECORDED](json, unpriced = json.includes('"pricing_error":{')) {
    const context = this[CONTEXT]
    context.dirty = true
    const recorded = new Recorded(json)
    // unknownModel: 'error' — the call is recorded unpriced, and the caller hears about it (as the error
    // core would have thrown: the one error shape).
    if (context.reportUnpriced && unpriced) {
      const e = recorded.value.pricing_error
      this[REPORT](Object.assign(new Error(e.message), e), 'price')
    }
    if (context.onRecord) {
      try {
        context.onRecord(recorded.value)
      } catch (err) {
        this[REPORT](err, 'onRecord')
      }
    }
    return recorded
  }

  /** A tracking failure, to `onError`: never thrown at the caller. */
  [REPORT](err, operation) {
    try {
      this[CONTEXT].onError(err, { operation })
    } catch {
      // A throwing hook must not break the caller's request either.
    }
  }
}

module.exports = { Tracker }
