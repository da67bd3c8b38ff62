import { existsSync, readFileSync } from 'node:fs'
import { dirname, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and sums self and total time per function. Frames from
 * dist/ are mapped back to src/ through the build's source maps, so the lead sees src file:line.
 * Also runnable alone: `node --import tsx bench/profile.ts <file.cpuprofile>`.
 */

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
  columnNumber: number
}
interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface FunctionTime {
  fn: string
  where: string
  category: string
  /** In the function itself (V8 self time). */
  selfMs: number
  /** In the function and what it calls, up to the next fastify / node http / our frame (see isOwner). */
  ownMs: number
  /** With the function anywhere on the stack (includes callbacks such as a hook's done()). */
  totalMs: number
  /** Shares of the busy time (everything but idle). */
  selfPct: number
  ownPct: number
  totalPct: number
}

export interface BucketTime {
  bucket: string
  mode: 'own' | 'total'
  ms: number
  pct: number
}

export interface ProfileSummary {
  file: string
  wallMs: number
  busyMs: number
  idleMs: number
  samples: number
  categories: { category: string; selfMs: number; selfPct: number }[]
  topSelf: FunctionTime[]
  ours: FunctionTime[]
  buckets: BucketTime[]
}

// ---- source maps (just enough: the VLQ mappings of tsc output) ---------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

function decodeVlq(segment: string): number[] {
  const out: number[] = []
  let value = 0
  let shift = 0
  for (const ch of segment) {
    const digit = B64.indexOf(ch)
    value += (digit & 31) << shift
    if (digit & 32) {
      shift += 5
    } else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1)
      value = 0
      shift = 0
    }
  }
  return out
}

interface SourceMap {
  sources: string[]
  /** Per generated line: [generatedColumn, sourceIndex, sourceLine] sorted by column. */
  lines: [number, number, number][][]
}

function parseSourceMap(file: string): SourceMap | undefined {
  if (!existsSync(file)) return undefined
  const raw = JSON.parse(readFileSync(file, 'utf8')) as {
    sources: string[]
    sourceRoot?: string
    mappings: string
  }
  const base = resolve(dirname(file), raw.sourceRoot ?? '')
  const sources = raw.sources.map((s) => relative(process.cwd(), resolve(base, s)))
  const lines: [number, number, number][][] = []
  let src = 0
  let srcLine = 0
  for (const line of raw.mappings.split(';')) {
    const segs: [number, number, number][] = []
    let col = 0
    for (const seg of line.split(',')) {
      if (seg === '') continue
      const v = decodeVlq(seg)
      col += v[0] ?? 0
      if (v.length >= 4) {
        src += v[1] ?? 0
        srcLine += v[2] ?? 0
        segs.push([col, src, srcLine])
      }
    }
    lines.push(segs)
  }
  return { sources, lines }
}

const maps = new Map<string, SourceMap | undefined>()

/** `src/http/auth.ts:14` for a frame in dist/, else a short form of the URL. */
function locate(frame: CallFrame): string {
  const { url, lineNumber, columnNumber } = frame
  if (url === '') return ''
  if (url.startsWith('file://')) {
    const path = fileURLToPath(url)
    const nm = path.lastIndexOf('/node_modules/')
    if (nm >= 0) return `${path.slice(nm + '/node_modules/'.length)}:${lineNumber + 1}`
    let map = maps.get(path)
    if (!maps.has(path)) {
      map = parseSourceMap(`${path}.map`)
      maps.set(path, map)
    }
    const segs = map?.lines[lineNumber]
    if (map && segs && segs.length > 0) {
      let best = segs[0]!
      for (const s of segs) if (s[0] <= columnNumber) best = s
      return `${map.sources[best[1]]}:${best[2] + 1}`
    }
    return `${relative(process.cwd(), path)}:${lineNumber + 1}`
  }
  return `${url}:${lineNumber + 1}`
}

function categorise(frame: CallFrame): string {
  const { url, functionName } = frame
  if (url === '') {
    if (functionName.startsWith('(')) return functionName
    return 'V8 builtins / generated code'
  }
  if (url.startsWith('node:')) return 'node core'
  const nm = url.lastIndexOf('/node_modules/')
  if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/')
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!
  }
  if (url.includes('/dist/') || url.includes('/src/')) return 'token-broker (ours)'
  return 'other'
}

/**
 * Frames that decide who "owns" a sample. Walking up from the sampled frame, the first frame that
 * belongs to fastify, find-my-way, node's http layer or our code owns it; everything else (V8
 * builtins, crypto, streams, pino, ajv...) is work done on behalf of that owner. This separates a
 * hook's own work from the rest of the request, which Fastify runs inside the hook's done().
 */
function isOwner(f: CallFrame, category: string): boolean {
  return (
    category === 'token-broker (ours)' ||
    category === 'fastify' ||
    category === 'find-my-way' ||
    f.url.startsWith('node:_http')
  )
}

type Matcher = (f: CallFrame, where: string, category: string) => boolean
/** `total`: every sample with a matching frame on its stack; `own`: samples a matching frame owns. */
const BUCKETS: { bucket: string; mode: 'own' | 'total'; match: Matcher }[] = [
  { bucket: 'our code (src/), own work', mode: 'own', match: (_f, _w, c) => c === 'token-broker (ours)' },
  {
    bucket: '  authenticate(): sha256 + timingSafeEqual',
    mode: 'total',
    match: (f, w) => f.functionName === 'authenticate' && w.startsWith('src/http/auth.ts'),
  },
  { bucket: '  ALLOWED_CIDRS check', mode: 'total', match: (_f, w) => w.startsWith('src/config/network.ts') },
  {
    bucket: '  present()',
    mode: 'total',
    match: (f, w) => f.functionName === 'present' && w.startsWith('src/http/present.ts'),
  },
  {
    bucket: '  tokens.peek()',
    mode: 'total',
    match: (f, w) => f.functionName === 'peek' && w.startsWith('src/tokens/manager.ts'),
  },
  {
    bucket: 'per-request child logger (fastify -> pino.child + redact)',
    mode: 'total',
    match: (f, w) => f.functionName === 'createChildLogger' && w.startsWith('fastify/'),
  },
  {
    bucket: 'response serialisation (fast-json-stringify)',
    mode: 'total',
    match: (f, w) => f.functionName === 'serialize' && w.startsWith('fastify/lib/reply.js'),
  },
  {
    bucket: 'schema validation (params, querystring)',
    mode: 'total',
    match: (_f, w) => w.startsWith('fastify/lib/validation.js'),
  },
  {
    bucket: 'fastify hooks runners (own)',
    mode: 'own',
    match: (_f, w) => w.startsWith('fastify/lib/hooks.js'),
  },
  { bucket: 'fastify (own, all files)', mode: 'own', match: (_f, _w, c) => c === 'fastify' },
  { bucket: 'routing (find-my-way, own)', mode: 'own', match: (_f, _w, c) => c === 'find-my-way' },
  {
    bucket: 'node http parse + socket writes (own)',
    mode: 'own',
    match: (f) => f.url.startsWith('node:_http'),
  },
  {
    bucket: 'logging (pino, any caller)',
    mode: 'total',
    match: (_f, _w, c) => c === 'pino' || c === '@pinojs/redact',
  },
  { bucket: 'garbage collector', mode: 'total', match: (f) => f.functionName === '(garbage collector)' },
]

/**
 * `window`: only samples between these two moments count (process.hrtime.bigint() values in µs;
 * V8's profile clock and hrtime are both CLOCK_MONOTONIC on Linux), to leave start-up and warm-up out.
 */
export function summariseProfile(
  file: string,
  top = 25,
  window?: { fromUs: number; toUs: number },
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

  interface Info {
    key: string
    fn: string
    where: string
    category: string
    frame: CallFrame
    owner: boolean
  }
  const infoOf = new Map<number, Info>()
  const byKey = new Map<string, Info>()
  for (const n of profile.nodes) {
    const f = n.callFrame
    const where = locate(f)
    const fn = f.functionName || '(anonymous)'
    const key = `${fn}\u0000${where}`
    let info = byKey.get(key)
    if (!info) {
      const category = categorise(f)
      info = { key, fn, where, category, frame: f, owner: isOwner(f, category) }
      byKey.set(key, info)
    }
    infoOf.set(n.id, info)
  }

  const self = new Map<string, number>()
  const own = new Map<string, number>()
  const total = new Map<string, number>()
  const buckets = new Map<string, number>()
  const categories = new Map<string, number>()
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v)
  const { samples, timeDeltas } = profile
  const meanDelta = (profile.endTime - profile.startTime) / Math.max(1, samples.length)
  let idle = 0
  let busy = 0
  let counted = 0
  let at = profile.startTime
  for (let i = 0; i < samples.length; i++) {
    at += timeDeltas[i] ?? 0
    if (window && (at < window.fromUs || at > window.toUs)) continue
    counted++
    // A sample stands for the time until the next one.
    const dt = (timeDeltas[i + 1] ?? meanDelta) / 1000
    const leaf = infoOf.get(samples[i]!)!
    if (leaf.fn === '(idle)') {
      idle += dt
      continue
    }
    busy += dt
    add(self, leaf.key, dt)
    add(categories, leaf.category, dt)
    const seen = new Set<string>()
    const hit = new Set<string>()
    let owner: Info | undefined
    for (let id: number | undefined = samples[i]; id !== undefined; id = parent.get(id)) {
      const k = infoOf.get(id)!
      if (!owner && k.owner) owner = k
      if (!seen.has(k.key)) {
        seen.add(k.key)
        add(total, k.key, dt)
      }
      for (const b of BUCKETS) {
        if (b.mode === 'total' && !hit.has(b.bucket) && b.match(k.frame, k.where, k.category))
          hit.add(b.bucket)
      }
    }
    if (owner) {
      add(own, owner.key, dt)
      for (const b of BUCKETS) {
        if (b.mode === 'own' && b.match(owner.frame, owner.where, owner.category)) hit.add(b.bucket)
      }
    }
    for (const b of hit) add(buckets, b, dt)
  }

  const pct = (ms: number) => (busy > 0 ? (100 * ms) / busy : 0)
  const row = (key: string): FunctionTime => {
    const k = byKey.get(key)!
    const s = self.get(key) ?? 0
    const o = own.get(key) ?? 0
    const t = total.get(key) ?? 0
    return {
      fn: k.fn,
      where: k.where,
      category: k.category,
      selfMs: s,
      ownMs: o,
      totalMs: t,
      selfPct: pct(s),
      ownPct: pct(o),
      totalPct: pct(t),
    }
  }
  const topSelf = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key]) => row(key))
  const ours = [...own.keys()]
    .filter((key) => byKey.get(key)!.category === 'token-broker (ours)')
    .map(row)
    .sort((a, b) => b.ownMs - a.ownMs)
    .slice(0, top)
  return {
    file,
    wallMs: window ? (window.toUs - window.fromUs) / 1000 : (profile.endTime - profile.startTime) / 1000,
    busyMs: busy,
    idleMs: idle,
    samples: counted,
    categories: [...categories.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([category, ms]) => ({ category, selfMs: ms, selfPct: pct(ms) })),
    topSelf,
    ours,
    buckets: BUCKETS.map((b) => ({
      bucket: b.bucket,
      mode: b.mode,
      ms: buckets.get(b.bucket) ?? 0,
      pct: pct(buckets.get(b.bucket) ?? 0),
    })),
  }
}

const f1 = (n: number) => n.toFixed(1)

/**
 * With `requests` (answered during the profiled window), figures are µs per request as well.
 * Note: V8 samples wall-clock time on the main thread, so a syscall's "self time" (writev above
 * all) also holds kernel work and time the thread sat descheduled; /proc CPU time is the truer cost.
 */
export function formatProfile(s: ProfileSummary, limit = 20, requests?: number): string {
  const us = (ms: number) => (requests ? ` ${((ms * 1000) / requests).toFixed(2).padStart(6)} µs` : '')
  const lines: string[] = []
  lines.push(
    `profile ${s.file}: ${f1(s.wallMs / 1000)} s wall, ${f1(s.busyMs / 1000)} s busy on the broker's main thread, ${s.samples} samples${requests ? `, ${requests} requests (${((s.busyMs * 1000) / requests).toFixed(1)} µs busy per request)` : ''}; percentages are of busy time; writev & co. include kernel time`,
  )
  lines.push('  self time by origin:')
  for (const c of s.categories.slice(0, 10))
    lines.push(`    ${f1(c.selfPct).padStart(5)}%${us(c.selfMs)}  ${c.category}`)
  lines.push(`  top ${limit} functions by self time:`)
  for (const r of s.topSelf.slice(0, limit)) {
    lines.push(`    ${f1(r.selfPct).padStart(5)}%${us(r.selfMs)}  ${r.fn}  ${r.where || `[${r.category}]`}`)
  }
  lines.push('  our code (src/), own time (with what it calls, short of fastify / node http):')
  for (const r of s.ours.slice(0, 12))
    lines.push(`    ${f1(r.ownPct).padStart(5)}%${us(r.ownMs)}  ${r.fn}  ${r.where}`)
  lines.push('  where the time goes:')
  for (const b of s.buckets) lines.push(`    ${f1(b.pct).padStart(5)}%${us(b.ms)}  ${b.bucket}`)
  return lines.join('\n')
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const file = process.argv[2]
  if (!file) {
    process.stderr.write('usage: node --import tsx bench/profile.ts <file.cpuprofile>\n')
    process.exit(2)
  }
  process.stdout.write(`${formatProfile(summariseProfile(file), 30)}\n`)
}
