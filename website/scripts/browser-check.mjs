// browser-check serves the built site (.vitepress/dist) on loopback and drives
// headless Chromium through every page with playwright-core. It fails on a
// console error, an uncaught page error, a failed or 4xx/5xx same-origin
// request, an internal link to a page or anchor that does not exist, or a
// local search that finds nothing. It saves a screenshot of the Clustered
// Example page.
//
//   node scripts/browser-check.mjs [--out DIR] [--chromium PATH]
//
// --out defaults to <repo>/.tmp/website; --chromium to $MESH_CHROMIUM or
// /usr/bin/chromium. The report is written to <out>/browser-report.json and
// the exit status is 1 when anything failed.
import http from 'node:http'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const here = path.dirname(fileURLToPath(import.meta.url))
const site = path.resolve(here, '..')
const dist = path.join(site, '.vitepress', 'dist')

function arg(name, fallback) {
  const i = process.argv.indexOf(name)
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback
}
const outDir = path.resolve(arg('--out', path.join(site, '..', '.tmp', 'website')))
const executablePath = arg('--chromium', process.env.MESH_CHROMIUM || '/usr/bin/chromium')

const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.woff2': 'font/woff2', '.ico': 'image/x-icon', '.txt': 'text/plain',
}

// fileFor maps a URL path to a file in dist the way a static host would:
// "/" -> index.html, "/x" -> x.html when x is not a file.
function fileFor(urlPath) {
  let p = decodeURIComponent(urlPath.split('?')[0].split('#')[0])
  if (p.endsWith('/')) p += 'index.html'
  let f = path.join(dist, path.normalize(p))
  if (!f.startsWith(dist)) return null
  if (!fs.existsSync(f) && fs.existsSync(f + '.html')) f += '.html'
  return fs.existsSync(f) && fs.statSync(f).isFile() ? f : null
}

const notFound = []
const server = http.createServer((req, res) => {
  const f = fileFor(new URL(req.url, 'http://x').pathname)
  if (!f) {
    notFound.push(req.url)
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('not found')
    return
  }
  res.writeHead(200, { 'content-type': types[path.extname(f)] || 'application/octet-stream' })
  fs.createReadStream(f).pipe(res)
})

function htmlPages(dir, prefix = '') {
  const out = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (e.name !== 'assets') out.push(...htmlPages(path.join(dir, e.name), prefix + e.name + '/'))
    } else if (e.name.endsWith('.html') && e.name !== '404.html') {
      out.push('/' + prefix + e.name)
    }
  }
  return out.sort()
}

async function main() {
  if (!fs.existsSync(path.join(dist, 'index.html'))) {
    throw new Error(`${dist} has no index.html; run npm --prefix website run build first`)
  }
  if (!fs.existsSync(executablePath)) {
    throw new Error(`Chromium not found at ${executablePath}; install it with: apt-get update && apt-get install -y chromium`)
  }
  fs.mkdirSync(outDir, { recursive: true })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${server.address().port}`

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  })

  const failures = []
  const pages = htmlPages(dist)
  const anchors = new Map() // page path -> Set of element ids
  const links = [] // { from, href }
  const external = new Set()

  try {
    for (const p of pages) {
      const page = await context.newPage()
      const problems = []
      page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`) })
      page.on('pageerror', (e) => problems.push(`uncaught error: ${e.message}`))
      page.on('requestfailed', (r) => {
        if (r.url().startsWith(origin)) problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`)
        else problems.push(`request to another origin: ${r.url()}`)
      })
      page.on('response', (r) => {
        if (r.url().startsWith(origin) && r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`)
      })
      const resp = await page.goto(origin + p, { waitUntil: 'networkidle' })
      if (!resp || resp.status() !== 200) problems.push(`page answered ${resp ? resp.status() : 'nothing'}`)
      const info = await page.evaluate(() => ({
        ids: [...document.querySelectorAll('[id]')].map((e) => e.id),
        hrefs: [...document.querySelectorAll('a[href]')].map((a) => a.getAttribute('href')),
        h1: document.querySelector('h1')?.textContent?.trim() ?? '',
        text: document.querySelector('.VPContent')?.textContent ?? '',
      }))
      if (!info.h1) problems.push('page has no h1')
      if (info.text.includes('@include:') || info.text.includes('Code snippet path not found')) {
        problems.push('page shows an unresolved include')
      }
      anchors.set(p, new Set(info.ids))
      for (const href of info.hrefs) links.push({ from: p, href })
      if (p === '/clustered-example.html') {
        await page.screenshot({ path: path.join(outDir, 'clustered-example.png'), fullPage: true })
      }
      for (const msg of problems) failures.push(`${p}: ${msg}`)
      await page.close()
    }

    // Every internal link must reach a page, and its #fragment an element.
    for (const { from, href } of links) {
      const u = new URL(href, origin + from)
      if (u.origin !== origin) {
        if (u.protocol === 'http:' || u.protocol === 'https:') external.add(u.href)
        continue
      }
      const f = fileFor(u.pathname)
      if (!f) { failures.push(`${from}: broken link ${href}`); continue }
      if (u.hash && f.endsWith('.html')) {
        const target = '/' + path.relative(dist, f).split(path.sep).join('/')
        const ids = anchors.get(target)
        const id = decodeURIComponent(u.hash.slice(1))
        if (ids && !ids.has(id)) failures.push(`${from}: link ${href} points at a missing anchor #${id} on ${target}`)
      }
    }

    // Local search answers from the built index, with no outside service.
    const page = await context.newPage()
    page.on('console', (m) => { if (m.type() === 'error') failures.push(`search: console error: ${m.text()}`) })
    await page.goto(origin + '/', { waitUntil: 'networkidle' })
    await page.click('.VPNavBarSearch button')
    await page.fill('#localsearch-input', 'continuity')
    const hits = await page.waitForSelector('.VPLocalSearchBox .result', { timeout: 10000 })
      .then(() => page.locator('.VPLocalSearchBox .result').count())
      .catch(() => 0)
    if (hits === 0) failures.push('search: "continuity" found no results')
    await page.close()
  } finally {
    await context.close()
    server.close()
    fs.rmSync(profile, { recursive: true, force: true })
  }

  for (const u of notFound) failures.push(`server: 404 for ${u}`)
  const report = { pages, links: links.length, external: [...external].sort(), failures: [...new Set(failures)] }
  fs.writeFileSync(path.join(outDir, 'browser-report.json'), JSON.stringify(report, null, 2) + '\n')
  console.log(`checked ${pages.length} pages and ${links.length} links; screenshot ${path.join(outDir, 'clustered-example.png')}`)
  if (report.failures.length > 0) {
    console.error(`browser check failed:\n  ${report.failures.join('\n  ')}`)
    process.exit(1)
  }
  console.log('browser check: ok')
}

main().catch((e) => { console.error(`browser check: ${e.message}`); process.exit(1) })
