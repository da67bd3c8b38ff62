import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)
const json = (path: string) => JSON.parse(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8'))

describe('@token-broker/client as a package', () => {
  it('is a workspace of the root, recorded in the lockfile, built by npm run build', () => {
    const pkg = json('package.json')
    expect(pkg.workspaces).toContain('client')
    expect(pkg.scripts.build).toContain('client')
    const lock = json('package-lock.json')
    expect(lock.packages.client.name).toBe('@token-broker/client')
    expect(lock.packages['node_modules/@token-broker/client']).toMatchObject({
      link: true,
      resolved: 'client',
    })
  })

  it('depends at runtime on undici at most, and ships ESM with types', () => {
    const pkg = json('client/package.json')
    expect(pkg.name).toBe('@token-broker/client')
    expect(pkg.type).toBe('module')
    expect(Object.keys(pkg.dependencies ?? {})).toEqual(['undici'])
    expect(pkg.peerDependencies).toBeUndefined()
    expect(pkg.exports['.']).toMatchObject({ types: './dist/index.d.ts', default: './dist/index.js' })
  })

  it('resolves as `@token-broker/client` from the repository root once built', async () => {
    // The client's half of `npm run build`, so this test stands alone on a fresh clone.
    await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'client/tsconfig.json'], {
      cwd: root,
    })
    const script = [
      "import { createBrokerClient, BrokerError } from '@token-broker/client'",
      "const c = createBrokerClient({ url: 'http://127.0.0.1:1', key: 'k'.repeat(16) })",
      "const where = import.meta.resolve('@token-broker/client')",
      'console.log(JSON.stringify({ fn: typeof createBrokerClient, err: typeof BrokerError, methods: Object.keys(c).sort(), where }))',
      'await c.close()',
    ].join('\n')
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root })
    const got = JSON.parse(stdout)
    expect(got).toMatchObject({ fn: 'function', err: 'function' })
    expect(got.methods).toEqual(['close', 'fetch', 'headers', 'interceptor', 'rejected', 'token'])
    expect(got.where).toMatch(/\/client\/dist\/index\.js$/)
    expect(readFileSync(new URL('../../client/dist/index.d.ts', import.meta.url), 'utf8')).toContain(
      'createBrokerClient',
    )
  }, 60_000)
})
