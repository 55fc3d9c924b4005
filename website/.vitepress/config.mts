import { defineConfig } from 'vitepress'
import fs from 'node:fs'
import path from 'node:path'

const srcDir = path.resolve(__dirname, '../docs')

// VitePress leaves an include or a code import whose file is missing in the
// page (as a comment or as "Code snippet path not found"). A page that shows
// captured output or compiled snippets must never build without them, so the
// build stops here instead.
function assertIncludesExist(): void {
  const missing: string[] = []
  for (const name of fs.readdirSync(srcDir)) {
    if (!name.endsWith('.md')) continue
    const file = path.join(srcDir, name)
    const src = fs.readFileSync(file, 'utf-8')
    const refs = [
      ...[...src.matchAll(/<!--\s*@include:\s*(.*?)\s*-->/g)].map((m) => m[1]),
      ...[...src.matchAll(/^<<<\s+(\S+)/gm)].map((m) => m[1]),
    ]
    for (let ref of refs) {
      ref = ref.replace(/\{[^}]*\}$/, '').replace(/#[\w-]+$/, '').replace(/\[[^\]]*\]$/, '')
      const target = ref.startsWith('@/') ? path.join(srcDir, ref.slice(2)) : path.resolve(path.dirname(file), ref)
      if (!fs.existsSync(target)) missing.push(`${name}: ${ref}`)
    }
  }
  if (missing.length > 0) {
    throw new Error(`included files are missing:\n  ${missing.join('\n  ')}\n` +
      'regenerate them with website/scripts/capture-cli-output.sh and website/scripts/gen-tooling.sh')
  }
}
assertIncludesExist()

export default defineConfig({
  title: 'Mesh for Go',
  description: 'A clustered runtime for Go services: one primary, one standby, durable continuity records and automatic failover.',
  srcDir: 'docs',
  lang: 'en-US',
  cleanUrls: false,
  lastUpdated: false,
  head: [
    ['link', { rel: 'icon', type: 'image/svg+xml', href: '/favicon.svg' }],
    ['meta', { name: 'theme-color', content: '#3c6e71' }],
  ],
  markdown: {
    theme: { light: 'github-light', dark: 'github-dark' },
  },
  themeConfig: {
    logo: '/favicon.svg',
    nav: [
      { text: 'Guide', link: '/getting-started' },
      { text: 'Proof', link: '/distributed-proof' },
      { text: 'Tooling', link: '/tooling' },
    ],
    sidebar: [
      {
        text: 'Start here',
        items: [
          { text: 'Getting Started', link: '/getting-started' },
          { text: 'Clustered Example', link: '/clustered-example' },
        ],
      },
      {
        text: 'Building with Mesh',
        items: [
          { text: 'Distributed Primitives', link: '/distributed-primitives' },
          { text: 'Tooling', link: '/tooling' },
        ],
      },
      {
        text: 'Running Mesh',
        items: [
          { text: 'Operating Mesh', link: '/operating' },
          { text: 'Security', link: '/security' },
          { text: 'Distributed Proof', link: '/distributed-proof' },
          { text: 'Production Backend Proof', link: '/production-backend-proof' },
        ],
      },
    ],
    search: { provider: 'local' },
    outline: { level: [2, 3] },
    docFooter: { prev: 'Previous page', next: 'Next page' },
  },
})
