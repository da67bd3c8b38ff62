import { BlockList, isIP } from 'node:net'
import { ConfigError } from './errors.js'

interface Cidr {
  address: string
  prefix: number
  family: 'ipv4' | 'ipv6'
}

function parseCidr(text: string, variable: string): Cidr {
  const [address = '', prefixText, extra] = text.split('/')
  const version = isIP(address)
  if (version === 0 || extra !== undefined)
    throw new ConfigError(`${variable}: "${text}" is not an IP address or CIDR`)
  const max = version === 4 ? 32 : 128
  const prefix = prefixText === undefined ? max : Number(prefixText)
  if (!/^\d{1,3}$/.test(prefixText ?? String(max)) || prefix > max) {
    throw new ConfigError(`${variable}: "${text}" has an invalid prefix length (0 to ${max})`)
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' }
}

export type AddressCheck = (ip: string) => boolean

/**
 * Compiles ALLOWED_CIDRS into a check. Results are memoised per address: callers are a handful of
 * internal hosts, so the hot path pays one Map lookup instead of a subnet walk.
 */
export function parseAllowedCidrs(list: string): AddressCheck {
  const blocks = new BlockList()
  const entries = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (entries.length === 0) throw new ConfigError('ALLOWED_CIDRS: lists no address range')
  for (const entry of entries) {
    const { address, prefix, family } = parseCidr(entry, 'ALLOWED_CIDRS')
    blocks.addSubnet(address, prefix, family)
  }
  const memo = new Map<string, boolean>()
  return (ip) => {
    let allowed = memo.get(ip)
    if (allowed === undefined) {
      allowed = check(blocks, ip)
      if (memo.size >= 4096) memo.clear()
      memo.set(ip, allowed)
    }
    return allowed
  }
}

function check(blocks: BlockList, ip: string): boolean {
  // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; judge them as the IPv4 they are.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1]
  if (mapped) return blocks.check(mapped, 'ipv4')
  const version = isIP(ip)
  if (version === 0) return false
  return blocks.check(ip, version === 4 ? 'ipv4' : 'ipv6')
}

/** TRUST_PROXY in the forms Fastify's `trustProxy` takes: a boolean, a hop count, or addresses/CIDRs. */
export type TrustProxy = boolean | string[] | ((address: string, hop: number) => boolean)

export function parseTrustProxy(value: string): TrustProxy {
  const text = value.trim()
  if (text === 'true') return true
  if (text === 'false') return false
  if (/^\d+$/.test(text)) {
    // A hop count: trust that many proxies in front of us (Fastify's types take it as a function).
    const hops = Number(text)
    return (_address, hop) => hop < hops
  }
  const entries = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const entry of entries) parseCidr(entry, 'TRUST_PROXY')
  if (entries.length === 0)
    throw new ConfigError('TRUST_PROXY: must be true, false, a hop count or addresses')
  return entries
}
