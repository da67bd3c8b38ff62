import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NODE_FLAGS } from '../node-flags.js'
import { createSimulator } from './server.js'

/**
 * `npm run demo`: the Adobe simulator in this process and the real broker (dist/server.js) as a
 * child, wired together with throwaway secrets. Ctrl-C stops both.
 */
const IMS_CLIENT_ID = 'demo-ims-client'
const EQP_APP_ID = 'DEMOAPP001'
const CLIENT_KEY = 'demo-key'

async function main(): Promise<void> {
  // Empty counts as unset, as the broker reads its environment.
  const port = process.env.PORT || '8080'
  const host = process.env.HOST || '127.0.0.1'
  const imsSecret = randomBytes(18).toString('base64url')
  const eqpSecret = randomBytes(18).toString('base64url')

  const sim = createSimulator({ secrets: { [IMS_CLIENT_ID]: imsSecret, [EQP_APP_ID]: eqpSecret } })
  const simUrl = await sim.listen(0, '127.0.0.1')

  const dir = mkdtempSync(join(tmpdir(), 'token-broker-demo-'))
  const configPath = join(dir, 'broker.config.json')
  writeFileSync(
    configPath,
    JSON.stringify(
      {
        credentials: {
          'demo-ims': {
            type: 'ims',
            environment: 'production',
            baseUrl: simUrl,
            clientId: IMS_CLIENT_ID,
            clientSecret: { env: 'DEMO_IMS_CLIENT_SECRET' },
            scopes: ['openid', 'AdobeID'],
          },
          'demo-eqp': {
            type: 'eqp',
            environment: 'sandbox',
            baseUrl: simUrl,
            appId: EQP_APP_ID,
            appSecret: { env: 'DEMO_EQP_APP_SECRET' },
            expiresIn: 7200,
          },
        },
        clients: { demo: { key: { env: 'DEMO_CLIENT_KEY' }, credentials: ['*'] } },
      },
      null,
      2,
    ),
  )

  const server = join(dirname(fileURLToPath(import.meta.url)), '..', 'server.js')
  const child = spawn(process.execPath, [...NODE_FLAGS, server], {
    stdio: 'inherit',
    env: {
      ...process.env,
      PORT: port,
      HOST: host,
      BROKER_CONFIG: configPath,
      DEMO_IMS_CLIENT_SECRET: imsSecret,
      DEMO_EQP_APP_SECRET: eqpSecret,
      DEMO_CLIENT_KEY: CLIENT_KEY,
    },
  })

  let stopping = false
  const cleanup = async (code: number) => {
    await sim.close().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
    process.exit(code)
  }
  child.on('exit', (code, signal) => {
    void cleanup(stopping || signal === 'SIGINT' || signal === 'SIGTERM' ? 0 : (code ?? 1))
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      stopping = true
      // Ctrl-C reaches the whole process group; forward for `kill <pid>` of the demo alone.
      child.kill(signal)
    })
  }

  const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  if (await waitReady(`${base}/readyz`, child)) {
    const lines = [
      '',
      `token-broker demo: broker on ${base}, Adobe simulator on ${simUrl}, store: ${process.env.REDIS_URL ? 'Redis' : 'in memory'}`,
      'Try:',
      `  curl -s -H 'Authorization: Bearer ${CLIENT_KEY}' ${base}/v1/tokens/demo-ims`,
      `  curl -s -H 'Authorization: Bearer ${CLIENT_KEY}' '${base}/v1/tokens/demo-eqp?min_ttl=600'`,
      `  curl -s -X POST -H 'Authorization: Bearer ${CLIENT_KEY}' ${base}/v1/tokens/demo-eqp/refresh`,
      `  curl -s -H 'Authorization: Bearer ${CLIENT_KEY}' ${base}/v1/credentials`,
      `  curl -s ${base}/readyz`,
      `  curl -s ${base}/metrics | grep '^token_broker'`,
      "Call Adobe's protected resources (the simulator's) by hand:",
      `  TOKEN=$(curl -s -H 'Authorization: Bearer ${CLIENT_KEY}' ${base}/v1/tokens/demo-ims | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')`,
      `  curl -s -H "Authorization: Bearer $TOKEN" -H 'X-API-Key: ${IMS_CLIENT_ID}' ${simUrl}/sample/v1/whoami`,
      '...or through the client (@token-broker/client; docs/client.md), which caches, refreshes and retries a 401 once:',
      `  import { createBrokerClient } from '@token-broker/client'`,
      `  const broker = createBrokerClient({ url: '${base}', key: '${CLIENT_KEY}' })`,
      `  const res = await broker.fetch('demo-ims', '${simUrl}/sample/v1/whoami')`,
      'End to end, including a token Adobe revokes (recovered by one retry):',
      `  BROKER_URL=${base} BROKER_KEY=${CLIENT_KEY} SIMULATOR_URL=${simUrl} npm run example`,
      'Revoke every token of the IMS credential at the simulator (the next call through the client recovers):',
      `  curl -s -X POST -d '{"id":"${IMS_CLIENT_ID}"}' ${simUrl}/__sim/revoke`,
      'Make the simulator misbehave (modes: ok, error5xx, rate_limited, reject, malformed, hang):',
      `  curl -s -X POST -H 'Content-Type: application/json' -d '{"id":"${EQP_APP_ID}","mode":"error5xx"}' ${simUrl}/__sim/behave`,
      `  curl -s ${simUrl}/__sim/stats`,
      'Ctrl-C stops both.',
      '',
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
  }
}

async function waitReady(url: string, child: ReturnType<typeof spawn>): Promise<boolean> {
  for (let i = 0; i < 300 && child.exitCode === null; i++) {
    try {
      const res = await fetch(url)
      await res.body?.cancel()
      if (res.ok) return true
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

await main()
