import type { Env } from './env.js'

export interface EgressProxySettings {
  readonly httpsProxy?: string
  readonly httpProxy?: string
  readonly noProxy?: string
}

/**
 * The egress proxy as the environment names it: the usual variables, the lower-case form first
 * (as curl and undici read them). HTTPS_PROXY unset falls back to HTTP_PROXY for `https:` upstreams.
 */
export function egressProxy(env: Env): EgressProxySettings {
  const httpsProxy = env.https_proxy ?? env.HTTPS_PROXY
  const httpProxy = env.http_proxy ?? env.HTTP_PROXY
  const noProxy = env.no_proxy ?? env.NO_PROXY
  return {
    ...(httpsProxy === undefined ? {} : { httpsProxy }),
    ...(httpProxy === undefined ? {} : { httpProxy }),
    ...(noProxy === undefined ? {} : { noProxy }),
  }
}

/** A proxy URL fit for a log line: scheme, host and port, never the user or password. */
export function describeProxy(url: string): string {
  try {
    const { protocol, host } = new URL(url)
    return `${protocol}//${host}`
  } catch {
    return '(unparsable proxy URL)'
  }
}
