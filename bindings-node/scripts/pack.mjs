// Packs the npm packages as published (napi-rs's layout): the platform package of one native module, and
// the main `llmledger` package — JS, d.ts and the loader, with every platform package of `napi.targets` as
// an optional dependency at the workspace version (what `napi pre-publish` adds at publish time; the repo's
// package.json leaves them out so that `npm ci` in a checkout fetches nothing unpublished).
//
//   node bindings-node/scripts/pack.mjs --out DIR --main
//   node bindings-node/scripts/pack.mjs --out DIR --platform linux-x64-gnu [--binary FILE.node]
//
// `--binary` defaults to this checkout's build, bindings-node/native/llmledger.<platform>.node. Each
// package is staged in a temporary folder and packed there with `npm pack`; the tarball's path is printed.
// Used by scripts/package-node.sh and .github/workflows/release.yml.
import { spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const { values: args } = parseArgs({
  options: {
    out: { type: 'string' },
    main: { type: 'boolean', default: false },
    platform: { type: 'string' },
    binary: { type: 'string' },
  },
})
if (!args.out || args.main === Boolean(args.platform)) {
  console.error('usage: pack.mjs --out DIR (--main | --platform NAME [--binary FILE.node])')
  process.exit(2)
}
const out = resolve(args.out)
mkdirSync(out, { recursive: true })

const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'))
const rootPkg = readJson(join(root, 'package.json'))

// napi-rs's platform name of a Rust target triple (the suffix of npm/<name>/ and of the .node file).
function platformOf(triple) {
  const [arch, , os, abi] = triple.split('-')
  const cpu = { x86_64: 'x64', aarch64: 'arm64' }[arch]
  if (os === 'darwin') return `darwin-${cpu}`
  if (os === 'windows') return `win32-${cpu}-${abi}`
  return `${os}-${cpu}-${abi}`
}

function pack(stage) {
  const res = spawnSync('npm', ['pack', '--pack-destination', out, '--json', '--loglevel=error'], {
    cwd: stage,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (res.status !== 0) process.exit(res.status ?? 1)
  const [{ filename }] = JSON.parse(res.stdout)
  rmSync(stage, { recursive: true, force: true })
  console.log(join(out, filename))
}

const stage = mkdtempSync(join(tmpdir(), 'llmledger-pack-'))
if (args.main) {
  const pkg = { ...rootPkg }
  // A consumer needs neither the repo's scripts (their files are not packed) nor its dev tools.
  delete pkg.scripts
  delete pkg.devDependencies
  pkg.optionalDependencies = Object.fromEntries(
    pkg.napi.targets.map((t) => [`@llmledger/${platformOf(t)}`, pkg.version]),
  )
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`)
  copyFileSync(join(root, 'README.md'), join(stage, 'README.md'))
  // `files` holds the folder's globs; copying the folder and letting npm pack apply them keeps one list.
  cpSync(join(root, 'bindings-node', 'js'), join(stage, 'bindings-node', 'js'), { recursive: true })
} else {
  const name = args.platform
  const pkg = readJson(join(root, 'npm', name, 'package.json'))
  const binary = args.binary ?? join(root, 'bindings-node', 'native', `llmledger.${name}.node`)
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`)
  copyFileSync(binary, join(stage, pkg.main))
}
pack(stage)
