'use strict'
// Loads the native module. Installed from npm, it comes prebuilt in the platform package that npm picked
// from the main package's optionalDependencies (`@llmledger/linux-x64-gnu`, …; npm/*/package.json): nothing
// compiles on the user's machine. A build from source is used only when asked, by `LLMLEDGER_NATIVE`:
// `local` loads this checkout's `npm run build` output (bindings-node/native/llmledger.<platform>.node;
// scripts/env.sh sets it for the repo's own scripts), a path loads that `.node` file.
const { existsSync } = require('node:fs')
const { join } = require('node:path')

const { platformName } = require('./platform.cjs')

function load() {
  const platform = platformName()
  const asked = process.env.LLMLEDGER_NATIVE
  if (asked === 'local') {
    const path = join(__dirname, '..', 'native', `llmledger.${platform}.node`)
    if (existsSync(path)) return require(path)
    throw loadError(`LLMLEDGER_NATIVE=local, but ${path} is missing: build it with \`npm run build\``)
  }
  if (asked) return require(asked)
  try {
    return require(`@llmledger/${platform}`)
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e
    throw loadError(
      `no prebuilt native module for ${platform}: the optional dependency @llmledger/${platform} is not ` +
        'installed (reinstall without --omit=optional or --no-optional), or this platform has no prebuilt ' +
        'package; to build from source, in a checkout: `npm ci && npm run build` and set LLMLEDGER_NATIVE=local',
    )
  }
}

function loadError(message) {
  const err = new Error(`llmledger: ${message}`)
  err.code = 'io'
  return err
}

module.exports = load()
