import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { onPath } from './find-redis.js'
import { type Child, freePort, sleep, startChild } from './process.js'

/**
 * Real Redis topologies for the tests and the bench, from `redis-server` on PATH: one server, a
 * Sentinel group (a master, a replica, three sentinels), a Cluster (three masters, optionally one
 * replica each), and a TLS server with an ACL user. Each is started once per test file and stopped
 * by its `stop()`. A missing `redis-server` fails loudly: nothing is ever skipped.
 */

export interface HostPort {
  host: string
  port: number
}

export interface RedisNode {
  readonly port: number
  readonly child: Child
  /** Kills the process at once (SIGKILL), as a crash would. */
  kill(): Promise<void>
}

const HOST = '127.0.0.1'
const run = promisify(execFile)

function binary(): string {
  const bin = onPath('redis-server')
  if (!bin)
    throw new Error('These tests need redis-server on PATH (the Debian package redis-server); none found')
  return bin
}

/** A port whose cluster-bus port (port + 10000) is free too. */
async function clusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort()
    if (port + 10000 <= 65535 && (await isFree(port + 10000))) return port
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, HOST, () => srv.close(() => resolve(true)))
  })
}

const BASE_ARGS = ['--bind', HOST, '--save', '', '--appendonly', 'no']

async function startNode(name: string, dir: string, args: string[], port?: number): Promise<RedisNode> {
  const p = port ?? (await freePort())
  const child = startChild(name, binary(), [...args, '--port', String(p), '--dir', dir])
  await waitUntil(`${name} to answer`, () => ping(p), child)
  return {
    port: p,
    child,
    async kill() {
      child.signal('SIGKILL')
      await child.exited
    },
  }
}

async function waitUntil(what: string, check: () => Promise<boolean>, child?: Child, ms = 20_000) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (child && !child.isRunning()) throw new Error(`${child.name} exited: ${child.output()}`)
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** One command on a short-lived connection. */
async function ask(port: number, ...args: string[]): Promise<unknown> {
  const c = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  c.on('error', () => {})
  try {
    await c.connect()
    return await c.call(args[0] ?? 'PING', ...args.slice(1))
  } finally {
    c.disconnect()
  }
}

const ping = async (port: number) => (await ask(port, 'PING')) === 'PONG'

const stopAll = async (children: Child[], dir: string) => {
  await Promise.all(children.map((c) => c.stop(3000)))
  await rm(dir, { recursive: true, force: true })
}

export interface SentinelGroup {
  readonly master: string
  readonly sentinels: HostPort[]
  /** The node Sentinel names master now. */
  currentMaster(): Promise<RedisNode>
  readonly nodes: RedisNode[]
  stop(): Promise<void>
}

/** A master, its replica and three sentinels (quorum 2) that fail over within a few seconds. */
export async function startSentinelGroup(master = 'mymaster'): Promise<SentinelGroup> {
  const dir = await mkdtemp(join(tmpdir(), 'tb-sentinel-'))
  const children: Child[] = []
  try {
    const primary = await startNode('redis-master', dir, BASE_ARGS)
    children.push(primary.child)
    const replica = await startNode('redis-replica', dir, [
      ...BASE_ARGS,
      '--replicaof',
      HOST,
      String(primary.port),
    ])
    children.push(replica.child)
    await waitUntil('the replica to sync', async () =>
      String(await ask(replica.port, 'INFO', 'replication')).includes('master_link_status:up'),
    )
    const sentinels: HostPort[] = []
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      const conf = join(dir, `sentinel-${i}.conf`)
      await writeFile(
        conf,
        [
          `port ${port}`,
          `bind ${HOST}`,
          `dir ${dir}`,
          `sentinel monitor ${master} ${HOST} ${primary.port} 2`,
          `sentinel down-after-milliseconds ${master} 1000`,
          `sentinel failover-timeout ${master} 4000`,
          '',
        ].join('\n'),
      )
      const child = startChild(`sentinel-${i}`, binary(), [conf, '--sentinel'])
      children.push(child)
      await waitUntil(`sentinel ${i}`, () => ping(port), child)
      sentinels.push({ host: HOST, port })
    }
    const nodes = [primary, replica]
    // Sentinels learn of the replica and of each other through hello messages: ready to fail over.
    for (const s of sentinels) {
      await waitUntil('the sentinels to know each other and the replica', async () => {
        const others = (await ask(s.port, 'SENTINEL', 'SENTINELS', master)) as unknown[]
        const replicas = (await ask(s.port, 'SENTINEL', 'REPLICAS', master)) as unknown[]
        return others.length === 2 && replicas.length === 1
      })
    }
    return {
      master,
      sentinels,
      nodes,
      async currentMaster() {
        const [, port] = (await ask(
          sentinels[0]?.port ?? 0,
          'SENTINEL',
          'GET-MASTER-ADDR-BY-NAME',
          master,
        )) as [string, string]
        const node = nodes.find((n) => n.port === Number(port))
        if (!node) throw new Error(`sentinel names an unknown master on port ${port}`)
        return node
      },
      stop: () => stopAll(children, dir),
    }
  } catch (err) {
    await stopAll(children, dir)
    throw err
  }
}

export interface RedisCluster {
  readonly nodes: HostPort[]
  readonly all: RedisNode[]
  /** The master serving `slot` now. */
  masterOf(slot: number): Promise<RedisNode>
  /** Waits until every live node reports the cluster ok. */
  waitOk(): Promise<void>
  stop(): Promise<void>
}

/** Three masters (and `replicas` replicas each), slots spread by `redis-cli --cluster create`. */
export async function startCluster(replicas: 0 | 1 = 0): Promise<RedisCluster> {
  const cli = onPath('redis-cli')
  if (!cli) throw new Error('These tests need redis-cli on PATH (the Debian package redis-tools); none found')
  const dir = await mkdtemp(join(tmpdir(), 'tb-cluster-'))
  const all: RedisNode[] = []
  try {
    for (let i = 0; i < 3 * (1 + replicas); i++) {
      const port = await clusterPort()
      const node = await startNode(
        `cluster-${i}`,
        dir,
        [
          ...BASE_ARGS,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '1000',
          '--cluster-replica-validity-factor',
          '0',
        ],
        port,
      )
      all.push(node)
    }
    await run(cli, [
      '--cluster',
      'create',
      ...all.map((n) => `${HOST}:${n.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ])
    const live = () => all.filter((n) => n.child.isRunning())
    const waitOk = async () => {
      for (const n of live()) {
        await waitUntil('the cluster to be ok', async () =>
          String(await ask(n.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'),
        )
      }
    }
    await waitOk()
    if (replicas) {
      // Replicas in sync, so a master's death loses nothing and a replica can take over.
      for (const n of all) {
        await waitUntil('replicas to sync', async () => {
          const info = String(await ask(n.port, 'INFO', 'replication'))
          return info.includes('role:master') || info.includes('master_link_status:up')
        })
      }
    }
    return {
      nodes: all.map((n) => ({ host: HOST, port: n.port })),
      all,
      async masterOf(slot) {
        for (const n of live()) {
          const ranges = (await ask(n.port, 'CLUSTER', 'SLOTS').catch(() => [])) as Array<
            [number, number, [string, number]]
          >
          const range = ranges.find(([from, to]) => slot >= from && slot <= to)
          const port = range?.[2][1]
          const node = all.find((x) => x.port === port && x.child.isRunning())
          if (node) return node
        }
        throw new Error(`no live master serves slot ${slot}`)
      },
      waitOk,
      stop: () =>
        stopAll(
          all.map((n) => n.child),
          dir,
        ),
    }
  } catch (err) {
    await stopAll(
      all.map((n) => n.child),
      dir,
    )
    throw err
  }
}

export interface TlsRedis {
  /** `rediss://user:password@127.0.0.1:port` */
  readonly url: string
  readonly username: string
  readonly password: string
  readonly port: number
  /** PEM of the CA that signed the server certificate. */
  readonly ca: string
  readonly caFile: string
  stop(): Promise<void>
}

/**
 * A Redis listening on TLS only, with a certificate made now by `openssl` (a CA and a server
 * certificate for 127.0.0.1), the default user off and one ACL user allowed what the broker needs.
 */
export async function startTlsRedis(): Promise<TlsRedis> {
  const openssl = onPath('openssl')
  if (!openssl) throw new Error('The TLS Redis tests need openssl on PATH; none found')
  const dir = await mkdtemp(join(tmpdir(), 'tb-tls-redis-'))
  const children: Child[] = []
  try {
    const f = (name: string) => join(dir, name)
    const ssl = (...args: string[]) => run(openssl, args, { cwd: dir })
    await ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=test-ca',
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.crt'),
    )
    await ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      f('server.key'),
      '-out',
      f('server.csr'),
    )
    await writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
    await ssl(
      'x509',
      '-req',
      '-in',
      f('server.csr'),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      f('ext.cnf'),
      '-out',
      f('server.crt'),
    )
    const username = 'broker'
    const password = `pw-${Math.random().toString(36).slice(2)}`
    const port = await freePort()
    const child = startChild('redis-tls', binary(), [
      ...BASE_ARGS,
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--tls-cert-file',
      f('server.crt'),
      '--tls-key-file',
      f('server.key'),
      '--tls-ca-cert-file',
      f('ca.crt'),
      '--tls-auth-clients',
      'no',
      '--dir',
      dir,
      '--user',
      'default',
      'off',
      '--user',
      username,
      'on',
      `>${password}`,
      '~*',
      '&*',
      '+@all',
    ])
    children.push(child)
    const ca = (await import('node:fs/promises')).readFile(f('ca.crt'), 'utf8')
    const caPem = await ca
    await waitUntil(
      'the TLS redis to answer',
      async () => {
        const c = new Redis({
          host: HOST,
          port,
          username,
          password,
          tls: { ca: caPem },
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        })
        c.on('error', () => {})
        try {
          await c.connect()
          return (await c.ping()) === 'PONG'
        } finally {
          c.disconnect()
        }
      },
      child,
    )
    return {
      url: `rediss://${username}:${password}@${HOST}:${port}`,
      username,
      password,
      port,
      ca: caPem,
      caFile: f('ca.crt'),
      stop: () => stopAll(children, dir),
    }
  } catch (err) {
    await stopAll(children, dir)
    throw err
  }
}
