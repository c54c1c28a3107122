// Builds the native module from source with @napi-rs/cli (the package's `install` script).
//
// Output: bindings-node/native/llmledger.<platform>.node plus the generated loader (index.cjs) and
// typings (index.d.ts) of the native part — generated, never edited by hand.
//
// Uses the caller's CARGO_TARGET_DIR and CARGO_BUILD_TARGET when set, defaulting the target triple to
// the host's so that napi, maturin and cargo share one target directory (napi always passes --target).
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const require = createRequire(import.meta.url)

const HOST_TRIPLES = {
  'linux-x64': 'x86_64-unknown-linux-gnu',
  'linux-arm64': 'aarch64-unknown-linux-gnu',
  'darwin-x64': 'x86_64-apple-darwin',
  'darwin-arm64': 'aarch64-apple-darwin',
  'win32-x64': 'x86_64-pc-windows-msvc',
}

const env = { ...process.env }
const triple = env.CARGO_BUILD_TARGET || HOST_TRIPLES[`${process.platform}-${process.arch}`]
if (triple) env.CARGO_BUILD_TARGET = triple

const cli = join(dirname(require.resolve('@napi-rs/cli/package.json')), 'dist', 'cli.js')
const args = [
  cli, 'build', '--platform', '--release',
  '--manifest-path', join(root, 'bindings-node', 'Cargo.toml'),
  '--package-json-path', join(root, 'package.json'),
  '--output-dir', join(root, 'bindings-node', 'native'),
  '--js', 'index.cjs',
  '--dts', 'index.d.ts',
]
if (triple) args.push('--target', triple)
if (env.CARGO_TARGET_DIR) args.push('--target-dir', env.CARGO_TARGET_DIR)

const result = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' })
if (result.error) throw result.error
process.exit(result.status ?? 1)
