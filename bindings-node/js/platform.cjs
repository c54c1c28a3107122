'use strict'
// This machine's platform name as napi-rs spells it, `<platform>-<arch>[-<abi>]`: the suffix of the
// platform package (`@llmledger/linux-x64-gnu`) and of its `.node` file. Used by native.cjs (and by
// scripts/package-node.sh to pick the package to pack).
const { readFileSync } = require('node:fs')

function platformName() {
  const base = `${process.platform}-${process.arch}`
  if (process.platform === 'win32') return `${base}-msvc`
  if (process.platform !== 'linux') return base
  return `${base}-${isMusl() ? 'musl' : 'gnu'}`
}

// As napi-rs's loaders do: musl's ldd says so (a file read); else the process report, which names glibc's
// version only under glibc (slower: it builds the whole report).
function isMusl() {
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    return !process.report.getReport().header.glibcVersionRuntime
  }
}

module.exports = { platformName }
