import { Counter, type Registry } from 'prom-client'

/**
 * `token_broker_requests_total{client,credential,code}`. The request path only adds one to a plain
 * number (two Map lookups, no label object, no hashing); the counter's series are written from
 * these tallies at scrape time. Callers of count() pass configured ids, '' and catalogue codes
 * only, so nothing a caller sends can add a series.
 */
export function requestCounter(registry: Registry) {
  /** client id → credential id → code → answers. */
  const tallies = new Map<string, Map<string, Record<string, number>>>()

  new Counter({
    name: 'token_broker_requests_total',
    help: 'Answers of /v1/*, by client ("" when not authenticated), credential ("" when none or not configured) and code (the error code, or OK)',
    labelNames: ['client', 'credential', 'code'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const [client, byCredential] of tallies) {
        for (const [credential, byCode] of byCredential) {
          for (const code in byCode) this.inc({ client, credential, code }, byCode[code])
        }
      }
    },
  })

  return {
    count(client: string, credential: string, code: string): void {
      let byCredential = tallies.get(client)
      if (byCredential === undefined) {
        byCredential = new Map()
        tallies.set(client, byCredential)
      }
      let byCode = byCredential.get(credential)
      if (byCode === undefined) {
        byCode = {}
        byCredential.set(credential, byCode)
      }
      byCode[code] = (byCode[code] ?? 0) + 1
    },
  }
}

export type RequestCounter = ReturnType<typeof requestCounter>
