import { accessSync, constants } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { freePort, onCleanup, sleep, startChild } from './procs.js'

/**
 * Finds a Redis the way the tests do (test/helpers/global-setup.ts, whose helpers are not exported):
 * REDIS_URL when set; else testcontainers when a Docker engine answers; else `redis-server` on PATH
 * on a free port; else fail naming the three ways. Whatever is started here is stopped on exit.
 */
export interface FoundRedis {
  url: string
  how: 'REDIS_URL' | 'testcontainers' | 'redis-server'
}

export async function findRedis(): Promise<FoundRedis> {
  const fromEnv = process.env.REDIS_URL
  if (fromEnv) return { url: fromEnv, how: 'REDIS_URL' }
  const docker = await fromDocker()
  if (docker) return { url: docker, how: 'testcontainers' }
  const local = await fromRedisServer()
  if (local) return { url: local, how: 'redis-server' }
  throw new Error(
    'The bench needs a real Redis and found none. Either set REDIS_URL (e.g. redis://127.0.0.1:6379), ' +
      'or run a Docker engine (testcontainers starts redis:7-alpine), or install redis-server on PATH.',
  )
}

async function fromDocker(): Promise<string | undefined> {
  const tc = await import('testcontainers')
  const probe = tc.getContainerRuntimeClient().then(
    () => true,
    () => false,
  )
  const answers = await Promise.race([probe, sleep(5000).then(() => false)])
  if (!answers) return undefined
  const container = await new tc.GenericContainer('redis:7-alpine')
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no'])
    .withExposedPorts(6379)
    .withWaitStrategy(tc.Wait.forLogMessage('Ready to accept connections'))
    .start()
  onCleanup(async () => {
    await container.stop()
  })
  return `redis://${container.getHost()}:${container.getMappedPort(6379)}`
}

async function fromRedisServer(): Promise<string | undefined> {
  const bin = onPath('redis-server')
  if (!bin) return undefined
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
    try {
      const deadline = Date.now() + 10_000
      while (!(await ping(port))) {
        if (!child.isRunning()) throw new Error(`redis-server exited at start: ${child.output()}`)
        if (Date.now() > deadline) throw new Error('redis-server did not answer PING within 10 s')
        await sleep(50)
      }
      return `redis://127.0.0.1:${port}`
    } catch (err) {
      lastErr = err
      await child.stop()
    }
  }
  throw new Error(`redis-server found at ${bin} but did not start: ${(lastErr as Error).message}`)
}

function onPath(name: string): string | undefined {
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
