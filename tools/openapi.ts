/**
 * Writes openapi.yaml from the route schemas: `npm run openapi`. Builds the app in-process with the
 * OpenAPI plugin (which a serving broker never loads), never listens and never calls upstream.
 * test/openapi/generated.test.ts fails when the committed file differs from what this produces.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { MockAgent } from 'undici'
import YAML from 'yaml'
import app, { serverOptions } from '../src/app.js'

export const OPENAPI_PATH = fileURLToPath(new URL('../openapi.yaml', import.meta.url))

const HEADER =
  '# Generated from the route schemas (src/http) by `npm run openapi`: edit those, not this file.\n'

/** The routes are the same whatever is configured: one credential of each type is enough to build them. */
const PLACEHOLDER = {
  credentials: {
    ims: {
      type: 'ims',
      environment: 'production',
      baseUrl: 'http://127.0.0.1:9',
      clientId: 'placeholder',
      clientSecret: { env: 'OPENAPI_SECRET' },
      scopes: ['openid'],
    },
    eqp: {
      type: 'eqp',
      environment: 'sandbox',
      baseUrl: 'http://127.0.0.1:9',
      appId: 'PLACEHOLDER',
      appSecret: { env: 'OPENAPI_SECRET' },
    },
  },
  clients: { placeholder: { key: { env: 'OPENAPI_SECRET' }, credentials: ['*'] } },
}

export async function generateOpenapi(): Promise<string> {
  const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  const dir = await mkdtemp(join(tmpdir(), 'token-broker-openapi-'))
  const fastify = Fastify({ ...serverOptions('silent'), logger: false })
  // Readiness starts the warm-up; with no network its mints fail at once, unseen.
  const offline = new MockAgent()
  offline.disableNetConnect()
  try {
    const config = join(dir, 'broker.config.json')
    await writeFile(config, JSON.stringify(PLACEHOLDER))
    const env = {
      BROKER_CONFIG: config,
      OPENAPI_SECRET: 'placeholder-secret-0123456789',
      LOG_LEVEL: 'silent',
    }
    await fastify.register(app, { env, dispatcher: offline, openapi: { version } })
    await fastify.ready()
    // Written out in full (no YAML anchors for shared parts), each long text as one readable block.
    return (
      HEADER +
      YAML.stringify(fastify.swagger(), { aliasDuplicateObjects: false, lineWidth: 0, blockQuote: 'literal' })
    )
  } finally {
    await fastify.close()
    await offline.close()
    await rm(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(OPENAPI_PATH, await generateOpenapi())
  process.stdout.write(`wrote ${OPENAPI_PATH}\n`)
}
