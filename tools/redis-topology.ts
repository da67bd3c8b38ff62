import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ConnectionOptions } from 'node:tls'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { certDir } from './certs.js'
import { onPath } from './find-redis.js'
import { type Child, freePort, sleep, startChild } from './process.js'

/**
 * Real Redis topologies for the tests, from `redis-server` on PATH: a Sentinel group (a master, a
 * replica, three sentinels), a Cluster (three masters, optionally one replica each), and a single
 * TLS server. Each may ask for an ACL user and TLS, as managed offerings do. Each is started once
 * per test file and stopped by its `stop()`. A missing `redis-server` fails loudly: nothing is
 * ever skipped.
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

/** An ACL user: the broker's, on every data node, allowed `rules` (default: everything). */
export interface AclUser {
  username: string
  password: string
  rules?: readonly string[]
}

/** What a topology demands of its clients beyond host and port. */
export interface Security {
  /** The default user off and this user on; the topology's own plumbing uses an admin user of its own. */
  acl?: AclUser
  /** TLS only (the plain port off), with certificates from a CA made for this topology. */
  tls?: boolean
  /**
   * With `tls`: nodes known by name only, as managed services publish them. Certificates name
   * `localhost` and no address, and the nodes announce `localhost` rather than their address.
   */
  byName?: boolean
}

/** How a client reaches the topology: the CA to trust (with `tls`) and the ACL user (with `acl`). */
export interface Access {
  /** `localhost` with `byName`, else the address. */
  readonly host: string
  readonly tls?: { readonly ca: string; readonly caFile: string }
  readonly acl?: AclUser
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

/** A topology's directory, certificates and users, and how its own plumbing connects. */
interface Setup {
  dir: string
  access: Access
  /** The user replication, sentinels and cluster set-up authenticate as. */
  admin?: { username: string; password: string }
  tlsFiles?: { cert: string; key: string; ca: string }
  /** Removes the directory (certificates included). */
  remove(): Promise<void>
}

const secret = (what: string) => `${what}-${randomBytes(9).toString('base64url')}`

async function prepare(name: string, security: Security): Promise<Setup> {
  if (security.byName && !security.tls) throw new Error('byName needs tls: names matter to certificates')
  const certs = await certDir()
  const dir = await mkdtemp(join(tmpdir(), `tb-${name}-`))
  const remove = async () => {
    await rm(dir, { recursive: true, force: true })
    await certs.remove()
  }
  try {
    let tls: Access['tls']
    let tlsFiles: Setup['tlsFiles']
    if (security.tls) {
      const ca = await certs.ca(`${name}-ca`)
      const leaf = await ca.issue(`${name}-node`, security.byName ? ['DNS:localhost'] : undefined)
      tls = { ca: ca.cert, caFile: ca.certFile }
      tlsFiles = { cert: leaf.certFile, key: leaf.keyFile, ca: ca.certFile }
    }
    return {
      dir,
      access: {
        host: security.byName ? 'localhost' : HOST,
        ...(tls ? { tls } : {}),
        ...(security.acl ? { acl: security.acl } : {}),
      },
      ...(security.acl ? { admin: { username: 'topology-admin', password: secret('admin') } } : {}),
      ...(tlsFiles ? { tlsFiles } : {}),
      remove,
    }
  } catch (err) {
    await remove()
    throw err
  }
}

/** The listening part of a server's or sentinel's configuration: a plain port, or a TLS one only. */
function listenLines(setup: Setup, port: number): string[][] {
  const f = setup.tlsFiles
  if (!f) return [['port', String(port)]]
  return [
    ['port', '0'],
    ['tls-port', String(port)],
    ['tls-cert-file', f.cert],
    ['tls-key-file', f.key],
    ['tls-ca-cert-file', f.ca],
    ['tls-auth-clients', 'no'],
    // Replication, the cluster bus and the sentinels' own links speak TLS too.
    ['tls-replication', 'yes'],
  ]
}

/** A data node's command line: listening, users, and how its replica authenticates to its master. */
function serverArgs(setup: Setup, port: number, extra: string[] = []): string[] {
  const args = [...BASE_ARGS, ...listenLines(setup, port).flatMap(([k, ...v]) => [`--${k}`, ...v])]
  const { acl } = setup.access
  if (acl && setup.admin) {
    const { username, password } = setup.admin
    args.push('--user', 'default', 'off')
    args.push('--user', username, 'on', `>${password}`, '~*', '&*', '+@all')
    args.push('--user', acl.username, 'on', `>${acl.password}`, ...(acl.rules ?? ['~*', '&*', '+@all']))
    args.push('--masteruser', username, '--masterauth', password)
  }
  return [...args, ...extra, '--dir', setup.dir]
}

/** How the topology's own commands reach a node or a sentinel. */
interface Conn {
  port: number
  username?: string
  password?: string
  tls?: ConnectionOptions
}

/** The admin's connection to a data node. */
function nodeConn(setup: Setup, port: number): Conn {
  return {
    port,
    ...(setup.admin ? setup.admin : {}),
    // Every certificate names localhost, with or without an address.
    ...(setup.access.tls ? { tls: { ca: setup.access.tls.ca, servername: 'localhost' } } : {}),
  }
}

async function startNode(name: string, setup: Setup, extra: string[], port?: number): Promise<RedisNode> {
  const p = port ?? (await freePort())
  const child = startChild(name, binary(), serverArgs(setup, p, extra))
  await waitUntil(`${name} to answer`, () => ping(nodeConn(setup, p)), child)
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
async function ask(conn: Conn, ...args: string[]): Promise<unknown> {
  const c = new Redis({
    host: HOST,
    port: conn.port,
    ...(conn.username ? { username: conn.username } : {}),
    ...(conn.password ? { password: conn.password } : {}),
    ...(conn.tls ? { tls: conn.tls } : {}),
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

const ping = async (conn: Conn) => (await ask(conn, 'PING')) === 'PONG'

const stopAll = async (children: Child[], setup: Setup) => {
  await Promise.all(children.map((c) => c.stop(3000)))
  await setup.remove()
}

export interface SentinelSecurity extends Security {
  /** The sentinels' own password (their default user), which they also give each other. */
  sentinelPassword?: string
}

export interface SentinelGroup {
  readonly master: string
  readonly sentinels: HostPort[]
  readonly access: Access
  /** The node Sentinel names master now. */
  currentMaster(): Promise<RedisNode>
  readonly nodes: RedisNode[]
  stop(): Promise<void>
}

/** A master, its replica and three sentinels (quorum 2) that fail over within a few seconds. */
export async function startSentinelGroup(
  master = 'mymaster',
  security: SentinelSecurity = {},
): Promise<SentinelGroup> {
  const setup = await prepare('sentinel', security)
  const { dir, access } = setup
  const children: Child[] = []
  // Announcing a name makes the sentinels hand out `localhost`, which the certificates name.
  const announce = security.byName ? ['--replica-announce-ip', 'localhost'] : []
  try {
    const primary = await startNode('redis-master', setup, announce)
    children.push(primary.child)
    const replica = await startNode('redis-replica', setup, [
      ...announce,
      '--replicaof',
      access.host,
      String(primary.port),
    ])
    children.push(replica.child)
    await waitUntil('the replica to sync', async () =>
      String(await ask(nodeConn(setup, replica.port), 'INFO', 'replication')).includes(
        'master_link_status:up',
      ),
    )
    const sentinelConn = (port: number): Conn => ({
      port,
      ...(security.sentinelPassword ? { password: security.sentinelPassword } : {}),
      ...(access.tls ? { tls: { ca: access.tls.ca, servername: 'localhost' } } : {}),
    })
    const sentinels: HostPort[] = []
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      const conf = join(dir, `sentinel-${i}.conf`)
      const lines = [
        ...listenLines(setup, port),
        ['bind', HOST],
        ['dir', dir],
        ...(security.byName
          ? [
              ['sentinel', 'resolve-hostnames', 'yes'],
              ['sentinel', 'announce-hostnames', 'yes'],
              ['sentinel', 'announce-ip', 'localhost'],
            ]
          : []),
        ['sentinel', 'monitor', master, access.host, String(primary.port), '2'],
        ['sentinel', 'down-after-milliseconds', master, '1000'],
        ['sentinel', 'failover-timeout', master, '4000'],
        ...(setup.admin
          ? [
              ['sentinel', 'auth-user', master, setup.admin.username],
              ['sentinel', 'auth-pass', master, setup.admin.password],
            ]
          : []),
        ...(security.sentinelPassword
          ? [
              ['requirepass', security.sentinelPassword],
              ['sentinel', 'sentinel-pass', security.sentinelPassword],
            ]
          : []),
      ]
      await writeFile(conf, `${lines.map((l) => l.join(' ')).join('\n')}\n`)
      const child = startChild(`sentinel-${i}`, binary(), [conf, '--sentinel'])
      children.push(child)
      await waitUntil(`sentinel ${i}`, () => ping(sentinelConn(port)), child)
      sentinels.push({ host: access.host, port })
    }
    const nodes = [primary, replica]
    // Sentinels learn of the replica and of each other through hello messages: ready to fail over.
    for (const s of sentinels) {
      await waitUntil('the sentinels to know each other and the replica', async () => {
        const others = (await ask(sentinelConn(s.port), 'SENTINEL', 'SENTINELS', master)) as unknown[]
        const replicas = (await ask(sentinelConn(s.port), 'SENTINEL', 'REPLICAS', master)) as unknown[]
        return others.length === 2 && replicas.length === 1
      })
    }
    return {
      master,
      sentinels,
      access,
      nodes,
      async currentMaster() {
        const [, port] = (await ask(
          sentinelConn(sentinels[0]?.port ?? 0),
          'SENTINEL',
          'GET-MASTER-ADDR-BY-NAME',
          master,
        )) as [string, string]
        const node = nodes.find((n) => n.port === Number(port))
        if (!node) throw new Error(`sentinel names an unknown master on port ${port}`)
        return node
      },
      stop: () => stopAll(children, setup),
    }
  } catch (err) {
    await stopAll(children, setup)
    throw err
  }
}

export interface RedisCluster {
  readonly nodes: HostPort[]
  readonly all: RedisNode[]
  readonly access: Access
  /** The master serving `slot` now. */
  masterOf(slot: number): Promise<RedisNode>
  /** Waits until every live node reports the cluster ok. */
  waitOk(): Promise<void>
  stop(): Promise<void>
}

/** Three masters (and `replicas` replicas each), slots spread by `redis-cli --cluster create`. */
export async function startCluster(replicas: 0 | 1 = 0, security: Security = {}): Promise<RedisCluster> {
  const cli = onPath('redis-cli')
  if (!cli) throw new Error('These tests need redis-cli on PATH (the Debian package redis-tools); none found')
  const setup = await prepare('cluster', security)
  const { dir, access } = setup
  const all: RedisNode[] = []
  const conn = (port: number) => nodeConn(setup, port)
  try {
    for (let i = 0; i < 3 * (1 + replicas); i++) {
      const port = await clusterPort()
      const node = await startNode(
        `cluster-${i}`,
        setup,
        [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '1000',
          '--cluster-replica-validity-factor',
          '0',
          // The bus speaks TLS too (the nodes show each other the same certificate).
          ...(access.tls ? ['--tls-cluster', 'yes'] : []),
          // CLUSTER SLOTS then names `localhost`, as managed services name their nodes.
          ...(security.byName
            ? ['--cluster-announce-hostname', 'localhost', '--cluster-preferred-endpoint-type', 'hostname']
            : []),
        ],
        port,
      )
      all.push(node)
    }
    await run(
      cli,
      [
        ...(setup.tlsFiles ? ['--tls', '--cacert', setup.tlsFiles.ca] : []),
        ...(setup.admin ? ['--user', setup.admin.username] : []),
        '--cluster',
        'create',
        ...all.map((n) => `${HOST}:${n.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      // The password through the environment, not the command line.
      { env: { ...process.env, ...(setup.admin ? { REDISCLI_AUTH: setup.admin.password } : {}) } },
    )
    const live = () => all.filter((n) => n.child.isRunning())
    const waitOk = async () => {
      for (const n of live()) {
        await waitUntil('the cluster to be ok', async () =>
          String(await ask(conn(n.port), 'CLUSTER', 'INFO')).includes('cluster_state:ok'),
        )
      }
    }
    await waitOk()
    if (replicas) {
      // Replicas in sync, so a master's death loses nothing and a replica can take over.
      for (const n of all) {
        await waitUntil('replicas to sync', async () => {
          const info = String(await ask(conn(n.port), 'INFO', 'replication'))
          return info.includes('role:master') || info.includes('master_link_status:up')
        })
      }
    }
    return {
      nodes: all.map((n) => ({ host: access.host, port: n.port })),
      all,
      access,
      async masterOf(slot) {
        for (const n of live()) {
          const ranges = (await ask(conn(n.port), 'CLUSTER', 'SLOTS').catch(() => [])) as Array<
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
          setup,
        ),
    }
  } catch (err) {
    await stopAll(
      all.map((n) => n.child),
      setup,
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
 * A Redis listening on TLS only (a CA and a certificate for 127.0.0.1 made now), the default user
 * off and one ACL user, `broker`, allowed `rules` (default: everything).
 */
export async function startTlsRedis(rules?: readonly string[]): Promise<TlsRedis> {
  const acl: AclUser = { username: 'broker', password: secret('pw'), ...(rules ? { rules } : {}) }
  const setup = await prepare('tls-redis', { tls: true, acl })
  const children: Child[] = []
  try {
    const node = await startNode('redis-tls', setup, [])
    children.push(node.child)
    const tls = setup.access.tls!
    return {
      url: `rediss://${acl.username}:${acl.password}@${HOST}:${node.port}`,
      username: acl.username,
      password: acl.password,
      port: node.port,
      ca: tls.ca,
      caFile: tls.caFile,
      stop: () => stopAll(children, setup),
    }
  } catch (err) {
    await stopAll(children, setup)
    throw err
  }
}
