import type { CredentialType } from '../core/credential.js'

/** Adobe's published token hosts, by credential type and environment. */
export const DEFAULT_BASE_URLS: { readonly [T in CredentialType]: Readonly<Record<string, string>> } = {
  ims: {
    production: 'https://ims-na1.adobelogin.com',
    stage: 'https://ims-na1-stg1.adobelogin.com',
  },
  eqp: {
    production: 'https://commercedeveloper-api.adobe.com',
    sandbox: 'https://commercedeveloper-sandbox-api.adobe.com',
  },
}

const INSECURE_MESSAGE =
  'must be an https: URL (plain http: is allowed only for loopback hosts, or with ALLOW_INSECURE_UPSTREAM=true)'

/** Loopback only: traffic to these never leaves the machine, so plain http cannot leak a secret. */
function isLoopback(hostname: string): boolean {
  // WHATWG URL has already normalised IPv4 forms (127.1, 0x7f.1, ...) to dotted quads.
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

/**
 * The base URL token requests go to: the credential's `baseUrl` when set, else the environment's default.
 * Returns origin plus optional path prefix, without a trailing slash.
 * Throws an Error whose message is a clause to append after the field name (it never echoes the URL,
 * which might hold userinfo).
 */
export function resolveBaseUrl(
  input: { type: CredentialType; environment: string; baseUrl?: string },
  allowInsecure: boolean,
): string {
  if (input.baseUrl === undefined) {
    const byEnv = DEFAULT_BASE_URLS[input.type]
    const url = Object.hasOwn(byEnv, input.environment) ? byEnv[input.environment] : undefined
    if (url === undefined) {
      throw new Error(`has no default for environment ${JSON.stringify(input.environment)}`)
    }
    return url
  }

  let url: URL
  try {
    url = new URL(input.baseUrl)
  } catch {
    throw new Error('is not a valid URL')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(INSECURE_MESSAGE)
  // Secrets belong in secret references, never in URLs (which end up in logs and metrics).
  if (url.username !== '' || url.password !== '') throw new Error('must not contain credentials (user:pass@)')
  if (url.search !== '' || url.hash !== '') throw new Error('must not have a query string or fragment')
  if (url.protocol === 'http:' && !allowInsecure && !isLoopback(url.hostname)) {
    throw new Error(INSECURE_MESSAGE)
  }

  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`
}
