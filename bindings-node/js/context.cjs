'use strict'
// Per-request attribution: a tracker's `run()` scopes live in an AsyncLocalStorage, so every tracked call
// made inside one (awaits, timers and callbacks included) is billed to it. Only the propagation lives
// here: each scope holds core's attribution (`NativeAttribution`), nested scopes merged by core.

const { AsyncLocalStorage } = require('node:async_hooks')
const native = require('./native.cjs')

const ATTRIBUTION_KEYS = ['userId', 'workspaceId', 'project', 'sessionId', 'conversationId']

function stringValues(obj) {
  const out = {}
  for (const [k, v] of Object.entries(obj)) {
    if (v != null) out[k] = String(v)
  }
  return out
}

/** A caller's attribution object as core reads it: string values, only the known keys. */
function normalizeAttribution(a) {
  if (!a) return undefined
  const out = {}
  for (const k of ATTRIBUTION_KEYS) {
    if (a[k] != null) out[k] = String(a[k])
  }
  if (a.tags) out.tags = stringValues(a.tags)
  return out
}

/** `attribution` (a caller's object) over `base` (core's, or undefined), as core's. */
function overlay(base, attribution) {
  const top = new native.NativeAttribution(normalizeAttribution(attribution))
  return base ? base.overlay(top) : top
}

/** The `run()` scopes of one tracker. */
class Context {
  constructor() {
    this.als = new AsyncLocalStorage()
  }

  /** Runs `fn` with `attribution` over the current scope's (nested runs merge). */
  run(attribution, fn) {
    return this.als.run(overlay(this.als.getStore(), attribution), fn)
  }

  /** The current scope's attribution (core's `NativeAttribution`), if any. */
  current() {
    return this.als.getStore()
  }
}

module.exports = { Context, normalizeAttribution, overlay, stringValues }
