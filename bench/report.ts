import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'

export interface Machine {
  cpuModel: string
  cpus: number
  node: string
  os: string
  totalMemMb: number
}

export function machine(): Machine {
  const cpus = os.cpus()
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    totalMemMb: Math.round(os.totalmem() / 2 ** 20),
  }
}

export interface Target {
  name: string
  pass: boolean | undefined
  detail: string
}

/** A plain fixed-width table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))]
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n')
}

export function writeResults(results: unknown): { file: string; latest: string } {
  const dir = join('bench', 'results')
  mkdirSync(dir, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const file = join(dir, `${stamp}.json`)
  const text = `${toJson(results)}\n`
  writeFileSync(file, text)
  const latest = join(dir, 'latest.json')
  writeFileSync(latest, text)
  return { file, latest }
}

const WIDTH = 110

/**
 * JSON laid out the way the repo's formatter (Biome, line width 110) lays it out, so that the
 * git-ignored results never make `npm run lint` complain: objects expanded, arrays of plain values
 * on one line when they fit.
 */
export function toJson(value: unknown, indent = 0, lead = 0): string {
  const pad = ' '.repeat(indent + 2)
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]'
    const items = value.map((v) => (v === undefined ? 'null' : v))
    if (items.every((v) => v === null || typeof v !== 'object')) {
      const inline = `[${items.map((v) => JSON.stringify(v)).join(', ')}]`
      if (lead + inline.length + 1 <= WIDTH) return inline
    }
    const inner = items.map((v) => `${pad}${toJson(v, indent + 2, pad.length)}`)
    return `[\n${inner.join(',\n')}\n${' '.repeat(indent)}]`
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined && typeof v !== 'function')
    if (entries.length === 0) return '{}'
    const inner = entries.map(([k, v]) => {
      const key = `${pad}${JSON.stringify(k)}: `
      return `${key}${toJson(v, indent + 2, key.length)}`
    })
    return `{\n${inner.join(',\n')}\n${' '.repeat(indent)}}`
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return 'null'
  return JSON.stringify(value) ?? 'null'
}
