'use strict'
// Loads the native module built by `npm install` (bindings-node/scripts/build.mjs) from bindings-node/native/:
// `llmledger.<platform>-<arch>[-<abi>].node`, as napi-rs names it.
const { existsSync } = require('node:fs')
const { join } = require('node:path')

function load() {
  const dir = join(__dirname, '..', 'native')
  const base = `llmledger.${process.platform}-${process.arch}`
  const candidates = [`${base}-gnu.node`, `${base}-musl.node`, `${base}-msvc.node`, `${base}.node`]
  for (const name of candidates) {
    const path = join(dir, name)
    if (existsSync(path)) return require(path)
  }
  const err = new Error(
    `llmledger: no native module for ${process.platform}-${process.arch} in ${dir}; ` +
      'build it with `npm run build` (or reinstall the package with its install script allowed)',
  )
  err.code = 'io'
  throw err
}

module.exports = load()
