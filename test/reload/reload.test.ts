import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createSimulator, type Simulator } from '../../src/simulator/server.js'
import { auth, buildBroker, EQP_APP_ID, IMS_CLIENT_ID } from '../helpers/broker.js'

/** Secrets live in files, as mounted secrets do, so that rotation is a file rewrite plus SIGHUP. */
describe('configuration reload (SIGHUP)', () => {
  let dir: string
  let sim: Simulator
  let app: FastifyInstance
  let logLines: string[]
  const expected: Record<string, string> = {}

  const file = (name: string) => join(dir, name)
  const document = (extraClients: Record<string, unknown> = {}) => ({
    credentials: {
      'adobe-ims': {
        type: 'ims',
        environment: 'production',
        baseUrl: sim.url,
        clientId: IMS_CLIENT_ID,
        clientSecret: { file: file('ims-secret') },
        scopes: ['openid'],
      },
      marketplace: {
        type: 'eqp',
        environment: 'sandbox',
        baseUrl: sim.url,
        appId: EQP_APP_ID,
        appSecret: { file: file('eqp-secret') },
      },
    },
    clients: { ops: { key: { file: file('ops-key') }, credentials: ['*'] }, ...extraClients },
  })
  const writeDocument = (doc: unknown) => writeFile(file('broker.config.json'), JSON.stringify(doc))
  const getIms = (key = 'ops-key-CANARY-1') => app.inject({ url: '/v1/tokens/adobe-ims', headers: auth(key) })

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'token-broker-reload-'))
    expected[IMS_CLIENT_ID] = 'ims-secret-CANARY-old'
    expected[EQP_APP_ID] = 'eqp-secret-CANARY-old'
    sim = createSimulator({ secrets: (id) => expected[id] })
    await sim.listen()
    await writeFile(file('ims-secret'), `${expected[IMS_CLIENT_ID]}\n`)
    await writeFile(file('eqp-secret'), `${expected[EQP_APP_ID]}\n`)
    await writeFile(file('ops-key'), 'ops-key-CANARY-1\n')
    await writeDocument(document())
    logLines = []
    app = await buildBroker({
      simUrl: sim.url,
      document: {},
      env: { BROKER_CONFIG: file('broker.config.json'), LOG_LEVEL: 'trace' },
      logLines,
    })
  })

  afterEach(async () => {
    await app.close()
    await sim.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('mints with a rotated secret at once and serves that token', async () => {
    const before = (await getIms()).json().access_token as string
    expect(sim.issued(IMS_CLIENT_ID)).toBe(1)

    // Adobe now accepts only the new secret; the old token is still served until the new one lands.
    expected[IMS_CLIENT_ID] = 'ims-secret-CANARY-new'
    await writeFile(file('ims-secret'), 'ims-secret-CANARY-new\n')
    expect(await app.reloadConfig('SIGHUP')).toBe(true)

    expect(sim.issued(IMS_CLIENT_ID)).toBe(2)
    expect(sim.issued(EQP_APP_ID)).toBe(1) // unchanged credentials are left alone
    const after = (await getIms()).json().access_token as string
    expect(after).not.toBe(before)
    expect(sim.requests.at(-1)).toMatchObject({ id: IMS_CLIENT_ID, ok: true })
  })

  it('adds and removes clients and credentials', async () => {
    await writeFile(file('reader-key'), 'reader-key-CANARY-2')
    const doc = document({ reader: { key: { file: file('reader-key') }, credentials: ['marketplace'] } })
    delete (doc.credentials as Record<string, unknown>)['adobe-ims']
    ;(doc.clients.ops as { credentials: string[] }).credentials = ['marketplace']
    expect(
      (await app.inject({ url: '/v1/tokens/marketplace', headers: auth('reader-key-CANARY-2') })).statusCode,
    ).toBe(401)

    await writeDocument(doc)
    expect(await app.reloadConfig('SIGHUP')).toBe(true)

    expect(
      (await app.inject({ url: '/v1/tokens/marketplace', headers: auth('reader-key-CANARY-2') })).statusCode,
    ).toBe(200)
    expect((await getIms()).json().code).toBe('CREDENTIAL_NOT_FOUND')
    const ready = (await app.inject({ url: '/readyz' })).json()
    expect(Object.keys(ready.credentials)).toEqual(['marketplace'])
  })

  it('a client key removed from a list by reload is locked out at once; the others keep working', async () => {
    await writeFile(file('ops-key-new'), 'ops-key-CANARY-new-2\n')
    const twoKeys = document()
    ;(twoKeys.clients.ops as { key: unknown }).key = [
      { file: file('ops-key') },
      { file: file('ops-key-new') },
    ]
    await writeDocument(twoKeys)
    expect(await app.reloadConfig('SIGHUP')).toBe(true)
    expect((await getIms('ops-key-CANARY-1')).statusCode).toBe(200)
    expect((await getIms('ops-key-CANARY-new-2')).statusCode).toBe(200)

    // The rotation's last step: the old key leaves the list.
    const newOnly = document()
    ;(newOnly.clients.ops as { key: unknown }).key = [{ file: file('ops-key-new') }]
    await writeDocument(newOnly)
    expect(await app.reloadConfig('SIGHUP')).toBe(true)
    expect((await getIms('ops-key-CANARY-1')).json().code).toBe('UNAUTHENTICATED')
    expect((await getIms('ops-key-CANARY-new-2')).statusCode).toBe(200)
    expect(logLines.join('')).not.toContain('CANARY')
  })

  it('refuses a broken file or a missing secret and keeps the running configuration', async () => {
    const token = (await getIms()).json().access_token as string

    await writeFile(file('broker.config.json'), '{"credentials": {"adobe-ims": ')
    expect(await app.reloadConfig('SIGHUP')).toBe(false)
    await writeDocument(document({ extra: { key: { file: file('missing-key') }, credentials: ['*'] } }))
    expect(await app.reloadConfig('SIGHUP')).toBe(false)
    await writeDocument({
      ...document(),
      clients: { ops: { key: 'a-literal-key-CANARY-3', credentials: ['*'] } },
    })
    expect(await app.reloadConfig('SIGHUP')).toBe(false)

    const res = await getIms()
    expect(res.statusCode).toBe(200)
    expect(res.json().access_token).toBe(token)
    expect(sim.mints()).toBe(2) // nothing re-minted
    const refusals = logLines.filter((l) => l.includes('configuration reload refused'))
    expect(refusals).toHaveLength(3)
    expect(refusals.join('')).toContain('clients.extra.key')
  })

  it('never logs a secret, a key or a token while reloading', async () => {
    const tokens = [(await getIms()).json().access_token as string]
    expected[IMS_CLIENT_ID] = 'ims-secret-CANARY-new'
    await writeFile(file('ims-secret'), 'ims-secret-CANARY-new')
    await app.reloadConfig('SIGHUP')
    tokens.push((await getIms()).json().access_token as string)
    await writeDocument({
      ...document(),
      clients: { ops: { key: 'a-literal-key-CANARY-3', credentials: ['*'] } },
    })
    await app.reloadConfig('SIGHUP')

    const log = logLines.join('')
    expect(log).toContain('configuration reloaded')
    expect(log).not.toMatch(/CANARY/)
    for (const token of tokens) expect(log).not.toContain(token)
  })
})
