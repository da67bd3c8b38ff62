import { accessSync, constants } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as after } from 'node:timers/promises'
import { type Child, freePort, sleep, startChild } from './process.js'

export interface FoundRedis {
  url: string
  how: 'REDIS_URL' | 'testcontainers' | 'redis-server'
  /** Stops what was started for this run (nothing for REDIS_URL). */
  stop: () => Promise<void>
}

/**
 * Finds a real Redis for `npm test` and `npm run bench`: REDIS_URL when set; else testcontainers when a Docker engine answers; else `redis-server` on PATH, started on a
 * free port; else fail naming the three ways. Never skips.
 */
export async function findRedis(purpose = 'The tests'): Promise<FoundRedis> {
  const fromEnv = process.env.REDIS_URL
  if (fromEnv) return { url: fromEnv, how: 'REDIS_URL', stop: async () => {} }
  const docker = await fromDocker()
  if (docker) return { ...docker, how: 'testcontainers' }
  const local = await fromRedisServer()
  if (local) return { ...local, how: 'redis-server' }
  throw new Error(
    `${purpose} need a real Redis and found none. Either set REDIS_URL (e.g. redis://127.0.0.1:6379), ` +
      'or run a Docker engine (testcontainers starts redis:7-alpine), or install redis-server on PATH.',
  )
}

interface Found {
  url: string
  stop: () => Promise<void>
}

async function fromDocker(): Promise<Found | undefined> {
  // Loaded only here: importing testcontainers is not free, and machines without Docker skip it.
  const tc = await import('testcontainers')
  // Cheap probe with a short bound, so a machine without a Docker engine does not wait long.
  const probe = tc.getContainerRuntimeClient().then(
    () => true,
    () => false,
  )
  const answers = await Promise.race([probe, after(5000, false, { ref: false })])
  if (!answers) return undefined
  const container = await new tc.GenericContainer('redis:7-alpine')
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no'])
    .withExposedPorts(6379)
    .withWaitStrategy(tc.Wait.forLogMessage('Ready to accept connections'))
    .start()
  return {
    url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
    stop: async () => {
      await container.stop()
    },
  }
}

async function fromRedisServer(): Promise<Found | undefined> {
  const bin = onPath('redis-server')
  if (!bin) return undefined
  // A port can be taken between picking and binding it: try a few.
  let lastErr: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const child = startChild('redis-server', bin, [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
    ])
    const stop = async () => {
      await child.stop(3000)
    }
    try {
      await waitForPing(port, child)
      return { url: `redis://127.0.0.1:${port}`, stop }
    } catch (err) {
      lastErr = err
      await stop()
    }
  }
  throw new Error(`redis-server found at ${bin} but did not start: ${(lastErr as Error).message}`)
}

export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue
    const file = path.join(dir, name)
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {
      // not in this directory
    }
  }
  return undefined
}

async function waitForPing(port: number, child: Child): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (!child.isRunning()) throw new Error(`redis-server exited at start: ${child.output()}`)
    if (await ping(port)) return
    await sleep(50)
  }
  throw new Error('redis-server did not answer PING within 10 s')
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    let buf = ''
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(500, () => done(false))
    sock.once('error', () => done(false))
    sock.once('connect', () => sock.write('PING\r\n'))
    sock.on('data', (d) => {
      buf += d.toString()
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'))
    })
  })
}
