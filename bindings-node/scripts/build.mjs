// Builds the native module from source (the package's `install` script).
//
// Output: bindings-node/native/llmledger.<platform>.node (loaded by js/native.cjs) and, when built with
// @napi-rs/cli, napi's generated typings of the native part (native/index.d.ts, never edited by hand).
//
// Uses the caller's CARGO_TARGET_DIR and CARGO_BUILD_TARGET when set, defaulting the target triple to
// the host's so that napi, maturin and cargo share one target directory (napi always passes --target).
// When @napi-rs/cli cannot be resolved — `npm install /path/to/llmledger` links the folder without
// installing its dependencies — the same library is built with plain cargo and copied into place.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const crate = join(root, 'bindings-node')
const outDir = join(crate, 'native')
const require = createRequire(import.meta.url)

// Host triple and napi's platform suffix.
const HOSTS = {
  'linux-x64': ['x86_64-unknown-linux-gnu', 'linux-x64-gnu'],
  'linux-arm64': ['aarch64-unknown-linux-gnu', 'linux-arm64-gnu'],
  'darwin-x64': ['x86_64-apple-darwin', 'darwin-x64'],
  'darwin-arm64': ['aarch64-apple-darwin', 'darwin-arm64'],
  'win32-x64': ['x86_64-pc-windows-msvc', 'win32-x64-msvc'],
}
const host = HOSTS[`${process.platform}-${process.arch}`]

const env = { ...process.env }
const triple = env.CARGO_BUILD_TARGET || (host && host[0])
if (triple) env.CARGO_BUILD_TARGET = triple

function run(cmd, args) {
  const result = spawnSync(cmd, args, { cwd: root, env, stdio: 'inherit' })
  if (result.error) throw result.error
  if (result.status !== 0) process.exit(result.status ?? 1)
}

let cli
try {
  cli = join(dirname(require.resolve('@napi-rs/cli/package.json')), 'dist', 'cli.js')
} catch {
  cli = null
}

if (cli) {
  const args = [
    cli, 'build', '--platform', '--release', '--no-js',
    '--manifest-path', join(crate, 'Cargo.toml'),
    '--package-json-path', join(root, 'package.json'),
    '--output-dir', outDir,
    '--dts', 'index.d.ts',
  ]
  if (triple) args.push('--target', triple)
  if (env.CARGO_TARGET_DIR) args.push('--target-dir', env.CARGO_TARGET_DIR)
  run(process.execPath, args)
} else {
  if (!host) throw new Error(`llmledger: no known target for ${process.platform}-${process.arch}`)
  run('cargo', ['build', '--release', '--manifest-path', join(crate, 'Cargo.toml'), '--target', triple])
  const targetDir = env.CARGO_TARGET_DIR || join(root, 'target')
  const lib = { linux: 'libllmledger_node.so', darwin: 'libllmledger_node.dylib', win32: 'llmledger_node.dll' }[process.platform]
  mkdirSync(outDir, { recursive: true })
  copyFileSync(join(targetDir, triple, 'release', lib), join(outDir, `llmledger.${host[1]}.node`))
}
