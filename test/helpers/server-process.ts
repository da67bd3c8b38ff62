import { join } from 'node:path'
import { type Child, ROOT, startNode, TSX } from '../../tools/process.js'

/**
 * `node --import tsx src/<entry>` as a real child process with exactly `env` (plus PATH and HOME):
 * nothing leaks in from the test runner's environment, REDIS_URL included. The caller stops it from
 * a vitest hook (`onTestFinished(() => child.stop())` or `afterEach`).
 */
export function startSource(entry: string, env: Record<string, string>, cwd = ROOT): Child {
  return startNode(entry, ['--import', TSX, join(ROOT, 'src', entry)], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
  })
}

/** The broker's process, `src/server.ts`. */
export const startServer = (env: Record<string, string>, cwd = ROOT): Child =>
  startSource('server.ts', env, cwd)
