import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { sleep } from '../tools/process.js'
import type { Broker } from './broker.js'
import { spawnBroker } from './broker.js'
import { onCleanup } from './cleanup.js'
import { type Ctx, contention, hotSetup, measure, median, startReadyBroker } from './hot-path.js'
import { hasErrors, type LoadResult } from './load.js'

export interface TlsRound {
  round: number
  http: LoadResult
  https: LoadResult
  httpsOverHttp: number
}

export interface TlsResult {
  rounds: TlsRound[]
  median: {
    httpRps: number
    httpsRps: number
    httpsOverHttp: number
    httpsP99: number
    httpsUsPerReq: number
  }
  errors: boolean
}

/** A throw-away self-signed certificate for 127.0.0.1, made with openssl, removed with the bench. */
function selfSigned(): { certFile: string; keyFile: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'token-broker-bench-tls-'))
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }))
  const certFile = join(dir, 'tls.crt')
  const keyFile = join(dir, 'tls.key')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  )
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8') }
}

async function waitReadyTls(b: Broker, ca: string): Promise<void> {
  const agent = new Agent({ connect: { ca } })
  try {
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(100)) {
      if (!b.child.isRunning()) throw new Error(`${b.name} exited:\n${b.child.output()}`)
      try {
        const res = await request(`${b.url}/readyz`, { dispatcher: agent })
        await res.body.dump()
        if (res.statusCode === 200) return
      } catch {
        // not listening yet
      }
    }
    throw new Error(`${b.name}: /readyz over https did not answer 200 in time`)
  } finally {
    await agent.close()
  }
}

/**
 * The hot path over HTTPS against the same broker over plain HTTP, one server at a time, paired per
 * round. Keep-alive connections, so this is the steady cost of TLS records, not of handshakes.
 */
export async function tlsPhase(ctx: Ctx): Promise<TlsResult> {
  const { cfg } = ctx
  const { opts, configPath, path } = hotSetup(ctx)
  const tls = selfSigned()
  const start = async (scheme: 'http' | 'https'): Promise<Broker> => {
    if (scheme === 'http') return startReadyBroker(opts, configPath)
    const b = await spawnBroker(
      { ...opts, name: 'broker-https', env: { TLS_CERT_FILE: tls.certFile, TLS_KEY_FILE: tls.keyFile } },
      configPath,
    )
    try {
      await waitReadyTls(b, tls.cert)
    } catch (err) {
      await b.stop()
      throw err
    }
    return b
  }
  const rounds: TlsRound[] = []
  for (let round = 1; round <= cfg.rounds; round++) {
    const results = {} as Record<'http' | 'https', LoadResult>
    for (const scheme of ['http', 'https'] as const) {
      const b = await start(scheme)
      try {
        results[scheme] = await measure(cfg, b, path)
      } finally {
        await b.stop()
      }
      const r = results[scheme]
      ctx.log(
        `  round ${round} ${scheme.padEnd(6)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms${contention(r)}${hasErrors(r) ? `  ERRORS non2xx=${r.non2xx} errors=${r.errors}` : ''}`,
      )
    }
    rounds.push({ round, ...results, httpsOverHttp: results.https.rps / results.http.rps })
  }
  return {
    rounds,
    median: {
      httpRps: median(rounds.map((r) => r.http.rps)),
      httpsRps: median(rounds.map((r) => r.https.rps)),
      httpsOverHttp: median(rounds.map((r) => r.httpsOverHttp)),
      httpsP99: median(rounds.map((r) => r.https.p99)),
      httpsUsPerReq: median(rounds.map((r) => r.https.serverUsPerReq ?? Number.NaN)),
    },
    errors: rounds.some((r) => hasErrors(r.http) || hasErrors(r.https)),
  }
}
