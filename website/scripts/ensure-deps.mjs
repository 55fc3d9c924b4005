// ensure-deps runs `npm ci` before a build when node_modules is missing or does
// not match package-lock.json, so that `npm --prefix website run build` works
// on a fresh checkout. Everything comes from the npm registry through npm
// itself; nothing else is downloaded.
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const site = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function readJSON(p) {
  try { return JSON.parse(fs.readFileSync(p, 'utf-8')) } catch { return null }
}

function stale() {
  const lock = readJSON(path.join(site, 'package-lock.json'))
  const installed = readJSON(path.join(site, 'node_modules', '.package-lock.json'))
  if (!lock) throw new Error('website/package-lock.json is missing')
  if (!installed) return 'node_modules is missing'
  for (const [p, meta] of Object.entries(lock.packages ?? {})) {
    if (p === '' || meta.optional) continue
    if (installed.packages?.[p]?.version !== meta.version) return `${p} is not installed at ${meta.version}`
  }
  return ''
}

const why = stale()
if (why) {
  console.log(`ensure-deps: ${why}; running npm ci`)
  const npm = process.env.npm_execpath
  const [cmd, args] = npm ? [process.execPath, [npm, 'ci', '--no-audit', '--no-fund']] : ['npm', ['ci', '--no-audit', '--no-fund']]
  const r = spawnSync(cmd, args, { cwd: site, stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
