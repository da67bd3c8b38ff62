import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { CREDENTIAL_ID, loadBrokerConfig, parseBrokerConfig } from '../../src/config/broker-file.js'
import { ConfigError, describeStartupError } from '../../src/config/errors.js'
import type { EqpCredential, ImsCredential } from '../../src/core/credential.js'
import { brokerDocument, buildBroker } from '../helpers/broker.js'

/** Canaries: a message that holds one of these has leaked a secret. */
const CANARY = {
  ims: 'ims-secret-CANARY-2b71fe',
  eqp: 'eqp-secret-CANARY-93c0aa',
  key: 'client-key-CANARY-5e8d14',
  key2: 'client-key-CANARY-ee0c29',
  file: 'file-secret-CANARY-d4a3b6',
}
const ENV = {
  IMS_SECRET: CANARY.ims,
  EQP_SECRET: CANARY.eqp,
  KEY_A: CANARY.key,
  KEY_B: CANARY.key2,
  EMPTY: '',
}

let dir: string
let secretFile: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'token-broker-config-'))
  secretFile = join(dir, 'secret')
  await writeFile(secretFile, `${CANARY.file}\n`)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

type Doc = {
  credentials: Record<string, Record<string, unknown>>
  clients: Record<string, Record<string, unknown>>
}

/** A valid document; each test breaks one thing. */
function valid(): Doc {
  return {
    credentials: {
      'adobe-ims': {
        type: 'ims',
        environment: 'production',
        clientId: 'abc123',
        clientSecret: { env: 'IMS_SECRET' },
        scopes: ['openid', 'AdobeID'],
      },
      marketplace: {
        type: 'eqp',
        environment: 'sandbox',
        appId: 'AQ17NZ49WC',
        appSecret: { env: 'EQP_SECRET' },
        expiresIn: 7200,
      },
    },
    clients: {
      'claims-service': { key: { env: 'KEY_A' }, credentials: ['adobe-ims'] },
      'ops-tools': { key: { env: 'KEY_B' }, credentials: ['*'] },
    },
  }
}

const opts = (allowInsecureUpstream = false) => ({
  path: 'broker.config.json',
  env: ENV,
  allowInsecureUpstream,
})

/** Parses, expects a ConfigError, and checks the message is one line, names `field`, and leaks nothing. */
async function refused(document: unknown, field: string | RegExp, allowInsecure = false): Promise<string> {
  const err = await parseBrokerConfig(document, opts(allowInsecure)).then(
    () => expect.unreachable('the document was accepted'),
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(ConfigError)
  const message = (err as ConfigError).message
  expectClean(message)
  if (typeof field === 'string') expect(message).toContain(field)
  else expect(message).toMatch(field)
  const line = describeStartupError(err)
  expectClean(line)
  expect(line).toMatch(/^invalid configuration: /)
  return message
}

function expectClean(message: string): void {
  expect(message).not.toMatch(/[\r\n]/)
  for (const secret of Object.values(CANARY)) expect(message).not.toContain(secret)
  expect(message).not.toMatch(/\n\s+at /)
}

describe('a valid file', () => {
  it('is read, with secrets resolved from env and file (trailing newline dropped)', async () => {
    const doc = valid()
    doc.credentials.marketplace!.appSecret = { file: secretFile }
    const config = await parseBrokerConfig(doc, opts())
    const ims = config.credentials.get('adobe-ims') as ImsCredential
    const eqp = config.credentials.get('marketplace') as EqpCredential
    expect(ims).toMatchObject({
      type: 'ims',
      clientId: 'abc123',
      clientSecrets: [CANARY.ims],
      baseUrl: 'https://ims-na1.adobelogin.com',
      scopes: ['openid', 'AdobeID'],
    })
    expect(eqp).toMatchObject({
      type: 'eqp',
      appSecrets: [CANARY.file],
      baseUrl: 'https://commercedeveloper-sandbox-api.adobe.com',
      expiresIn: 7200,
    })
    expect(config.clients.map((c) => c.id)).toEqual(['claims-service', 'ops-tools'])
    // Client keys are kept as digests only.
    expect(JSON.stringify(config.clients)).not.toContain(CANARY.key)
    expect(config.clients[1]!.credentials).toBe('*')
  })

  it('takes https and loopback http base URLs', async () => {
    for (const baseUrl of [
      'https://proxy.example.com/adobe',
      'http://127.0.0.1:9999',
      'http://localhost:1',
      'http://[::1]:8',
    ]) {
      const doc = valid()
      doc.credentials['adobe-ims']!.baseUrl = baseUrl
      const config = await parseBrokerConfig(doc, opts())
      expect(config.credentials.get('adobe-ims')!.baseUrl).toBe(baseUrl)
    }
  })

  it('knows the documented id rule', () => {
    for (const ok of ['a', '0', 'adobe-ims', 'a.b_c-d', 'x'.repeat(64)])
      expect(CREDENTIAL_ID.test(ok)).toBe(true)
    for (const bad of ['', 'A', '-a', '.a', '_a', 'a b', 'a/b', 'x'.repeat(65), 'é']) {
      expect(CREDENTIAL_ID.test(bad)).toBe(false)
    }
  })
})

describe('the file itself (loadBrokerConfig)', () => {
  it('missing: names BROKER_CONFIG and the path', async () => {
    const path = join(dir, 'nope.json')
    const err = await loadBrokerConfig({ path, env: ENV, allowInsecureUpstream: false }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ConfigError)
    const line = describeStartupError(err)
    expect(line).toMatch(/^invalid configuration: BROKER_CONFIG/)
    expect(line).toContain(path)
    expect(line).toContain('does not exist')
    expectClean(line)
  })

  it('a directory: names BROKER_CONFIG', async () => {
    const line = describeStartupError(
      await loadBrokerConfig({ path: dir, env: ENV, allowInsecureUpstream: false }).catch((e: unknown) => e),
    )
    expect(line).toMatch(/BROKER_CONFIG/)
    expectClean(line)
  })

  it.each([
    ['cut short after a literal secret', `{"credentials": {"a": {"clientSecret": "${CANARY.ims}"`],
    [
      'a stray token next to a secret',
      `{"credentials": {"a": {"clientSecret": "${CANARY.ims}" ${CANARY.key} }}}`,
    ],
    ['single quotes', `{'clientSecret': '${CANARY.ims}'}`],
    ['a trailing comma', `{"clients": {"k": {"key": "${CANARY.key}",}}}`],
    ['empty', ''],
  ])('invalid JSON (%s): names BROKER_CONFIG, never quotes the text', async (_name, text) => {
    const path = join(dir, 'broken.json')
    await writeFile(path, text)
    const err = await loadBrokerConfig({ path, env: ENV, allowInsecureUpstream: false }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ConfigError)
    const line = describeStartupError(err)
    expect(line).toMatch(/BROKER_CONFIG/)
    expect(line).toMatch(/not valid JSON/)
    expectClean(line)
  })

  it('a field error read from a file names the file and the field', async () => {
    const path = join(dir, 'literal.json')
    const doc = valid()
    doc.credentials['adobe-ims']!.clientSecret = CANARY.ims
    await writeFile(path, JSON.stringify(doc))
    const line = describeStartupError(
      await loadBrokerConfig({ path, env: ENV, allowInsecureUpstream: false }).catch((e: unknown) => e),
    )
    expect(line).toContain('BROKER_CONFIG')
    expect(line).toContain(path)
    expect(line).toContain('credentials.adobe-ims.clientSecret')
    expectClean(line)
  })
})

describe('secret references', () => {
  it('a literal secret string is refused and not echoed', async () => {
    const doc = valid()
    doc.credentials['adobe-ims']!.clientSecret = CANARY.ims
    expect(await refused(doc, 'credentials.adobe-ims.clientSecret')).toMatch(/literal secret/)
  })

  it('a literal client key is refused and not echoed', async () => {
    const doc = valid()
    doc.clients['claims-service']!.key = CANARY.key
    await refused(doc, 'clients.claims-service.key')
  })

  it('a literal number as a secret is refused', async () => {
    const doc = valid()
    doc.credentials.marketplace!.appSecret = 123456789
    await refused(doc, 'credentials.marketplace.appSecret')
  })

  it.each([
    ['an unknown kind', { vault: 'x' }],
    ['both env and file', { env: 'IMS_SECRET', file: '/x' }],
    ['an invalid variable name', { env: 'NOT-A-NAME' }],
    ['an empty file path', { file: '' }],
    ['null', null],
    ['an array', ['IMS_SECRET']],
    ['a secret next to the reference', { env: 'IMS_SECRET', value: CANARY.ims }],
  ])('a malformed reference (%s) is refused', async (_name, ref) => {
    const doc = valid()
    doc.credentials['adobe-ims']!.clientSecret = ref
    await refused(doc, 'credentials.adobe-ims.clientSecret')
  })

  it('an env reference to an unset variable names the field and the variable', async () => {
    const doc = valid()
    doc.credentials['adobe-ims']!.clientSecret = { env: 'NOT_SET_ANYWHERE' }
    const message = await refused(doc, 'credentials.adobe-ims.clientSecret')
    expect(message).toContain('NOT_SET_ANYWHERE')
  })

  it('a file reference to a missing file names the field and the path', async () => {
    const doc = valid()
    const missing = join(dir, 'no-such-secret')
    doc.clients['ops-tools']!.key = { file: missing }
    const message = await refused(doc, 'clients.ops-tools.key')
    expect(message).toContain(missing)
    expect(message).toContain('ENOENT')
  })

  it('an empty secret (env or file) is refused', async () => {
    const doc = valid()
    doc.credentials['adobe-ims']!.clientSecret = { env: 'EMPTY' }
    expect(await refused(doc, 'credentials.adobe-ims.clientSecret')).toMatch(/empty/)

    const emptyFile = join(dir, 'empty-secret')
    await writeFile(emptyFile, '\n')
    const doc2 = valid()
    doc2.credentials.marketplace!.appSecret = { file: emptyFile }
    expect(await refused(doc2, 'credentials.marketplace.appSecret')).toMatch(/empty/)
  })
})

describe('credentials', () => {
  it.each([
    ['upper case', 'Adobe-IMS'],
    ['too long (65)', 'a'.repeat(65)],
    ['a slash', 'a/b'],
    ['a leading dash', '-ims'],
    ['a space', 'adobe ims'],
  ])('a bad id (%s) is refused, naming it', async (_name, id) => {
    const doc = valid()
    doc.credentials[id] = doc.credentials['adobe-ims']!
    delete doc.credentials['adobe-ims']
    doc.clients['claims-service']!.credentials = ['marketplace']
    const message = await refused(doc, `credentials.${id}`)
    expect(message).toMatch(/not a valid credential id/)
  })

  it('an unknown type is refused', async () => {
    const doc = valid()
    doc.credentials['adobe-ims']!.type = 'oauth'
    expect(await refused(doc, 'credentials.adobe-ims.type')).toMatch(/"ims" or "eqp"/)
  })

  it('a missing type is refused', async () => {
    const doc = valid()
    delete doc.credentials['adobe-ims']!.type
    await refused(doc, 'credentials.adobe-ims.type')
  })

  it.each([
    ['ims', 'adobe-ims', 'sandbox'],
    ['eqp', 'marketplace', 'stage'],
    ['ims', 'adobe-ims', 'Production'],
    ['eqp', 'marketplace', undefined],
  ])('the wrong environment for the type (%s, %s) is refused', async (_type, id, environment) => {
    const doc = valid()
    doc.credentials[id]!.environment = environment
    const message = await refused(doc, `credentials.${id}.environment`)
    expect(message).toMatch(_type === 'ims' ? /production, stage/ : /production, sandbox/)
  })

  it('an http baseUrl for a non-loopback host is refused, unless ALLOW_INSECURE_UPSTREAM', async () => {
    for (const baseUrl of ['http://sim.internal:8080', 'http://10.0.0.5', 'http://127.0.0.1.nip.io']) {
      const doc = valid()
      doc.credentials['adobe-ims']!.baseUrl = baseUrl
      expect(await refused(doc, 'credentials.adobe-ims.baseUrl')).toMatch(/https/)
      const config = await parseBrokerConfig(doc, opts(true))
      expect(config.credentials.get('adobe-ims')!.baseUrl).toBe(baseUrl.replace(/\/$/, ''))
    }
  })

  it.each([
    ['not a URL', 'not a url'],
    ['another scheme', 'ftp://example.com'],
    ['userinfo', `https://user:${CANARY.ims}@example.com`],
  ])('a bad baseUrl (%s) is refused without echoing it', async (_name, baseUrl) => {
    const doc = valid()
    doc.credentials.marketplace!.baseUrl = baseUrl
    const message = await refused(doc, 'credentials.marketplace.baseUrl', true)
    expect(message).not.toContain(baseUrl)
  })

  it('an unknown field (a typo) is refused, naming it', async () => {
    const doc = valid()
    doc.credentials['adobe-ims']!.clientSecert = { env: 'IMS_SECRET' }
    expect(await refused(doc, 'credentials.adobe-ims.clientSecert')).toMatch(/not a known field/)
  })

  it('a field of the other type is refused', async () => {
    const doc = valid()
    doc.credentials['adobe-ims']!.appId = 'x'
    await refused(doc, 'credentials.adobe-ims.appId')
  })

  it.each([
    ['no scopes', 'scopes', undefined],
    ['empty scopes', 'scopes', []],
    ['a scope with a comma', 'scopes', ['openid,AdobeID']],
    ['no clientId', 'clientId', undefined],
    ['a blank clientId', 'clientId', '  '],
  ])('an IMS credential with %s is refused', async (_name, field, value) => {
    const doc = valid()
    doc.credentials['adobe-ims']![field] = value
    await refused(doc, `credentials.adobe-ims.${field}`)
  })

  it.each([
    ['59', 59],
    ['172801', 172_801],
    ['a fraction', 100.5],
    ['a string', '7200'],
  ])('an EQP expiresIn of %s is refused', async (_name, expiresIn) => {
    const doc = valid()
    doc.credentials.marketplace!.expiresIn = expiresIn
    await refused(doc, 'credentials.marketplace.expiresIn')
  })

  it('no credentials at all is refused', async () => {
    await refused({ credentials: {}, clients: valid().clients }, 'credentials')
  })
})

describe('clients', () => {
  it('a client naming an unknown credential is refused', async () => {
    const doc = valid()
    doc.clients['claims-service']!.credentials = ['adobe-ims', 'no-such-credential']
    const message = await refused(doc, 'clients.claims-service.credentials')
    expect(message).toContain('no-such-credential')
  })

  it('["*", "x"] is refused: "*" stands alone', async () => {
    const doc = valid()
    doc.clients['ops-tools']!.credentials = ['*', 'adobe-ims']
    expect(await refused(doc, 'clients.ops-tools.credentials')).toMatch(/\["\*"\] alone/)
  })

  it.each([
    ['an empty list', []],
    ['a string', 'adobe-ims'],
    ['a number in the list', [1]],
  ])('a credentials list that is %s is refused', async (_name, list) => {
    const doc = valid()
    doc.clients['ops-tools']!.credentials = list
    await refused(doc, 'clients.ops-tools.credentials')
  })

  it('two clients with the same key are refused, naming both, never the key', async () => {
    const doc = valid()
    doc.clients['ops-tools']!.key = { env: 'KEY_A' }
    const message = await refused(doc, 'clients.ops-tools.key')
    expect(message).toContain('clients.claims-service.key')
  })

  it('the same key value under two variables is still a duplicate', async () => {
    const doc = valid()
    doc.clients['ops-tools']!.key = { file: secretFile }
    doc.clients['claims-service']!.key = { file: secretFile }
    await refused(doc, /clients\.(ops-tools|claims-service)\.key/)
  })

  it('an unknown client field (a typo) is refused', async () => {
    const doc = valid()
    doc.clients['ops-tools']!.credentails = ['*']
    await refused(doc, 'clients.ops-tools.credentails')
  })

  it('a bad client id is refused', async () => {
    const doc = valid()
    doc.clients['Ops Tools'] = doc.clients['ops-tools']!
    delete doc.clients['ops-tools']
    await refused(doc, 'clients.Ops Tools')
  })

  it('no clients at all is refused', async () => {
    await refused({ credentials: valid().credentials, clients: {} }, 'clients')
  })
})

describe('the document', () => {
  it.each([
    ['an array', []],
    ['a string', 'x'],
    ['null', null],
  ])('%s is refused', async (_name, document) => {
    await refused(document, 'the file')
  })

  it('an unknown top-level field (a typo) is refused', async () => {
    const doc = { ...valid(), client: {} }
    await refused(doc, '(top level).client')
  })
})

describe('describeStartupError', () => {
  it('keeps the first line of an unexpected error only', () => {
    const err = new Error('something broke\n    at secretPlace (file.ts:1:1)')
    expect(describeStartupError(err)).toBe('start-up failed: something broke')
  })

  it('names each failing variable of an env-schema error, never its value', () => {
    const err = Object.assign(new Error(`env must have PORT ${CANARY.key}`), {
      errors: [
        { instancePath: '/PORT', message: 'must be integer', params: {} },
        { instancePath: '', message: "must have required property 'X'", params: { missingProperty: 'X' } },
      ],
    })
    const line = describeStartupError(err)
    expect(line).toBe('invalid configuration: PORT must be integer; X is required')
    expectClean(line)
  })

  it('handles non-Error throws', () => {
    expect(describeStartupError('plain')).toBe('start-up failed: plain')
    expect(describeStartupError(undefined)).toMatch(/^start-up failed: /)
  })
})

describe('lists of references (rotation)', () => {
  const ENV_LISTS = { ...ENV, IMS_NEXT: 'ims-secret-CANARY-next', KEY_A2: 'client-key-CANARY-a2-long' }
  const withLists = () => ({ path: 'broker.config.json', env: ENV_LISTS, allowInsecureUpstream: false })

  it('a list of secrets is resolved in order, the first preferred', async () => {
    const doc = valid()
    doc.credentials['adobe-ims']!.clientSecret = [{ env: 'IMS_SECRET' }, { env: 'IMS_NEXT' }]
    doc.credentials.marketplace!.appSecret = [{ file: secretFile }]
    const config = await parseBrokerConfig(doc, withLists())
    const ims = config.credentials.get('adobe-ims') as ImsCredential
    const eqp = config.credentials.get('marketplace') as EqpCredential
    expect(ims.clientSecrets).toEqual([CANARY.ims, 'ims-secret-CANARY-next'])
    expect(eqp.appSecrets).toEqual([CANARY.file])
  })

  it('a single reference is a list of one', async () => {
    const config = await parseBrokerConfig(valid(), opts())
    expect((config.credentials.get('adobe-ims') as ImsCredential).clientSecrets).toEqual([CANARY.ims])
    expect(config.clients[0]!.keyDigests).toHaveLength(1)
  })

  it('a list of client keys keeps one digest per key, never a key', async () => {
    const doc = valid()
    doc.clients['claims-service']!.key = [{ env: 'KEY_A' }, { env: 'KEY_A2' }]
    const config = await parseBrokerConfig(doc, withLists())
    expect(config.clients[0]!.keyDigests).toHaveLength(2)
    expect(JSON.stringify(config.clients)).not.toContain('CANARY')
  })

  it.each([
    ['clientSecret', 'adobe-ims', 0],
    ['clientSecret', 'adobe-ims', 6],
    ['appSecret', 'marketplace', 0],
    ['appSecret', 'marketplace', 6],
  ])('a %s list of %s entries (%i) is refused, naming the field', async (field, id, n) => {
    const doc = valid()
    doc.credentials[id]![field] = Array.from({ length: n as number }, () => ({ env: 'IMS_SECRET' }))
    expect(await refused(doc, `credentials.${id}.${field}`)).toMatch(/1 to 5/)
  })

  it.each([0, 6])('a client key list of %i entries is refused, naming the field', async (n) => {
    const doc = valid()
    doc.clients['ops-tools']!.key = Array.from({ length: n }, () => ({ env: 'KEY_B' }))
    expect(await refused(doc, 'clients.ops-tools.key')).toMatch(/1 to 5/)
  })

  it('five references are taken', async () => {
    const doc = valid()
    doc.credentials['adobe-ims']!.clientSecret = Array.from({ length: 5 }, () => ({ env: 'IMS_SECRET' }))
    const config = await parseBrokerConfig(doc, opts())
    expect((config.credentials.get('adobe-ims') as ImsCredential).clientSecrets).toHaveLength(5)
  })

  it('a bad entry of a list is named by its position', async () => {
    const doc = valid()
    doc.credentials['adobe-ims']!.clientSecret = [{ env: 'IMS_SECRET' }, CANARY.ims]
    await refused(doc, 'credentials.adobe-ims.clientSecret[1]')
    const doc2 = valid()
    doc2.clients['ops-tools']!.key = [{ env: 'KEY_B' }, { env: 'NOT_SET_ANYWHERE' }]
    const message = await refused(doc2, 'clients.ops-tools.key[1]')
    expect(message).toContain('NOT_SET_ANYWHERE')
  })

  it('a key listed twice, or shared with another client through a list, is refused', async () => {
    const doc = valid()
    doc.clients['ops-tools']!.key = [{ env: 'KEY_B' }, { env: 'KEY_B' }]
    expect(await refused(doc, 'clients.ops-tools.key[1]')).toContain('clients.ops-tools.key[0]')
    const doc2 = valid()
    doc2.clients['ops-tools']!.key = [{ env: 'KEY_B' }, { env: 'KEY_A' }]
    expect(await refused(doc2, 'clients.ops-tools.key[1]')).toContain('clients.claims-service.key')
  })
})

describe('config hygiene', () => {
  /** Writes `text` as the config file and returns loadBrokerConfig's one line. */
  async function fileRefused(text: string, env: Record<string, string> = ENV): Promise<string> {
    const path = join(dir, 'hygiene.json')
    await writeFile(path, text)
    const err = await loadBrokerConfig({ path, env, allowInsecureUpstream: false }).then(
      () => expect.unreachable('the file was accepted'),
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ConfigError)
    const line = describeStartupError(err)
    expectClean(line)
    expect(line).toMatch(/^invalid configuration: BROKER_CONFIG/)
    return line
  }

  it.each([
    ['clients', (t: string) => t.replace('{', '{"clients": {},')],
    ['credentials.adobe-ims', (t: string) => t.replace('"marketplace":', '"adobe-ims": {}, "marketplace":')],
    [
      'credentials.adobe-ims.clientId',
      (t: string) => t.replace('"clientId":"abc123"', '"clientId":"abc123","clientId":"other"'),
    ],
    [
      'clients.claims-service.key.env',
      (t: string) => t.replace('{"env":"KEY_A"}', '{"env":"KEY_A","env":"KEY_B"}'),
    ],
  ])('a name given twice in one object (%s) is refused, naming it', async (path, edit) => {
    const text = edit(JSON.stringify(valid()))
    expect(text).not.toBe(JSON.stringify(valid()))
    // JSON.parse alone takes this silently, keeping the last.
    expect(() => JSON.parse(text)).not.toThrow()
    expect(await fileRefused(text)).toContain(`: ${path} appears twice`)
  })

  it('the same name in different objects is fine', async () => {
    const path = join(dir, 'same-names.json')
    await writeFile(path, JSON.stringify(valid(), null, 2))
    const config = await loadBrokerConfig({ path, env: ENV, allowInsecureUpstream: false })
    expect(config.credentials.size).toBe(2)
  })

  it.each([
    ['a trailing newline', `${CANARY.ims}\n`],
    ['a trailing CRLF', `${CANARY.ims}\r\n`],
    ['a tab', `ims\t${CANARY.ims}`],
    ['a NUL', `${CANARY.ims}\u0000`],
    ['DEL', `${CANARY.ims}\u007f`],
    ['a C1 control', `${CANARY.ims}\u0085`],
  ])('an env secret with a control character (%s) is refused, naming the field', async (_name, value) => {
    const doc = valid()
    doc.credentials['adobe-ims']!.clientSecret = { env: 'DIRTY' }
    const err = await parseBrokerConfig(doc, { ...opts(), env: { ...ENV, DIRTY: value } }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ConfigError)
    const message = (err as Error).message
    expectClean(message)
    expect(message).not.toContain('ims\t')
    expect(message).toContain('credentials.adobe-ims.clientSecret')
    expect(message).toMatch(/control character/)
  })

  it('a client key with a control character is refused, naming the field', async () => {
    const doc = valid()
    doc.clients['ops-tools']!.key = { env: 'DIRTY' }
    const err = await parseBrokerConfig(doc, { ...opts(), env: { ...ENV, DIRTY: `${CANARY.key2}\n` } }).catch(
      (e: unknown) => e,
    )
    expect((err as Error).message).toMatch(/^clients\.ops-tools\.key: .*control character/)
    expectClean((err as Error).message)
  })

  it('a secret file drops exactly one trailing newline: two are refused', async () => {
    const one = join(dir, 'one-newline')
    const two = join(dir, 'two-newlines')
    await writeFile(one, `${CANARY.file}\r\n`)
    await writeFile(two, `${CANARY.file}\n\n`)
    const doc = valid()
    doc.credentials.marketplace!.appSecret = { file: one }
    const config = await parseBrokerConfig(doc, opts())
    expect((config.credentials.get('marketplace') as EqpCredential).appSecrets).toEqual([CANARY.file])
    doc.credentials.marketplace!.appSecret = { file: two }
    expect(await refused(doc, 'credentials.marketplace.appSecret')).toMatch(/control character/)
  })

  it('a secret file over 64 KiB is refused; one of exactly 64 KiB is taken', async () => {
    const big = join(dir, 'big-secret')
    const limit = join(dir, 'limit-secret')
    await writeFile(big, 'b'.repeat(64 * 1024 + 1))
    await writeFile(limit, 'l'.repeat(64 * 1024))
    const doc = valid()
    doc.credentials.marketplace!.appSecret = { file: big }
    const message = await refused(doc, 'credentials.marketplace.appSecret')
    expect(message).toMatch(/64 KiB/)
    expect(message).not.toContain('bbbb')
    doc.credentials.marketplace!.appSecret = { file: limit }
    const config = await parseBrokerConfig(doc, opts())
    expect((config.credentials.get('marketplace') as EqpCredential).appSecrets[0]).toHaveLength(64 * 1024)
  })

  it('a client key under 16 characters is accepted with a warning naming the client, never the key', async () => {
    const doc = valid()
    doc.clients['ops-tools']!.key = [{ env: 'KEY_B' }, { env: 'SHORT' }]
    const short = 'CANARY-15chars!'
    expect(short).toHaveLength(15)
    const config = await parseBrokerConfig(doc, { ...opts(), env: { ...ENV, SHORT: short } })
    expect(config.warnings).toEqual([
      {
        field: 'clients.ops-tools.key[1]',
        client: 'ops-tools',
        message: expect.stringMatching(/16 characters/),
      },
    ])
    expect(JSON.stringify(config.warnings)).not.toContain(short)
    // 16 characters, or all of valid()'s canary keys: no warning.
    expect((await parseBrokerConfig(valid(), opts())).warnings).toEqual([])
  })

  it('the short-key warning is one log line at start, naming the client, never the key', async () => {
    const short = 'short-CANARY-1'
    const document = brokerDocument('http://127.0.0.1:9')
    document.clients['claims-service'].key = { env: 'SHORT_KEY' }
    const lines: string[] = []
    const app = await buildBroker({
      simUrl: 'http://127.0.0.1:9',
      document,
      warm: false,
      logLines: lines,
      env: { SHORT_KEY: short, LOG_LEVEL: 'info' },
    })
    onTestFinished(() => app.close())
    const warnings = lines.filter((l) => l.includes('shorter than 16'))
    expect(warnings).toHaveLength(1)
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, client: 'claims-service' })
    expect(lines.join('')).not.toContain(short)
  })
})
