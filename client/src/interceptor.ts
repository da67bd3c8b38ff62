import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { BrokerToken } from './broker-api.js'
import type { TokenSource } from './fetch.js'

type Dispatch = Dispatcher['dispatch']
type Handler = Dispatcher.DispatchHandler
type Controller = Dispatcher.DispatchController
type IncomingHeaders = IncomingHttpHeaders
type Headers = Dispatcher.DispatchOptions['headers']

/** The body of a 401 kept to hand on when no retry happens; larger bodies are cut. */
const MAX_KEPT_BODY = 64 * 1024

/** Lower-cased names of a token's headers, computed once per token. */
const lowerNames = new WeakMap<Record<string, string>, string[]>()
function namesOf(token: Record<string, string>): string[] {
  let names = lowerNames.get(token)
  if (names === undefined) {
    names = Object.keys(token).map((n) => n.toLowerCase())
    lowerNames.set(token, names)
  }
  return names
}

/** The request's headers with the credential's, replacing any of the same name (case-insensitive). */
export function mergeHeaders(
  headers: Headers,
  token: Record<string, string>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const taken = namesOf(token)
  const add = (name: string, value: unknown) => {
    if (value === undefined || value === null || taken.includes(name.toLowerCase())) return
    out[name] = Array.isArray(value) ? value.map(String) : String(value)
  }
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) add(String(headers[i]), headers[i + 1])
  } else if (headers != null && typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [name, value] of headers as Iterable<[string, string | string[] | undefined]>) add(name, value)
  } else if (headers != null) {
    const h = headers as Record<string, unknown>
    for (const name in h) add(name, h[name])
  }
  for (const name in token) out[name] = token[name]!
  return out
}

const replayable = (body: unknown): boolean =>
  body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array

/**
 * Passes a response through, except a 401 when a retry is allowed: that one is held back (status,
 * headers, a bounded body) and `onUnauthorized` decides, once it has ended, whether to retry or to
 * hand it on as it is.
 */
class UnauthorizedHandler implements Handler {
  #held:
    | {
        controller: Controller
        status: number
        headers: IncomingHeaders
        message?: string
        chunks: Buffer[]
        size: number
      }
    | undefined

  constructor(
    private readonly downstream: Handler,
    private readonly canRetry: boolean,
    private readonly onUnauthorized: (replay: () => void) => void,
  ) {}

  onRequestStart(controller: Controller, context: unknown): void {
    this.downstream.onRequestStart?.(controller, context)
  }

  onRequestUpgrade(
    controller: Controller,
    statusCode: number,
    headers: IncomingHeaders,
    socket: Duplex,
  ): void {
    this.downstream.onRequestUpgrade?.(controller, statusCode, headers, socket)
  }

  onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: IncomingHeaders,
    statusMessage?: string,
  ): void {
    if (statusCode === 401 && this.canRetry) {
      this.#held = { controller, status: statusCode, headers, message: statusMessage, chunks: [], size: 0 }
      return
    }
    this.downstream.onResponseStart?.(controller, statusCode, headers, statusMessage)
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    const held = this.#held
    if (held === undefined) {
      this.downstream.onResponseData?.(controller, chunk)
      return
    }
    if (held.size < MAX_KEPT_BODY) {
      const part = chunk.subarray(0, MAX_KEPT_BODY - held.size)
      held.chunks.push(part)
      held.size += part.length
    }
  }

  onResponseEnd(controller: Controller, trailers: IncomingHeaders): void {
    const held = this.#held
    if (held === undefined) {
      this.downstream.onResponseEnd?.(controller, trailers)
      return
    }
    const d = this.downstream
    this.onUnauthorized(() => {
      d.onResponseStart?.(held.controller, held.status, held.headers, held.message)
      for (const chunk of held.chunks) d.onResponseData?.(held.controller, chunk)
      d.onResponseEnd?.(held.controller, trailers)
    })
  }

  onResponseError(controller: Controller, error: Error): void {
    this.downstream.onResponseError?.(controller, error)
  }
}

/**
 * An undici compose interceptor: adds the credential's headers to every request and, on a 401,
 * reports the token rejected and sends the request once more with the new one.
 */
export function tokenInterceptor(source: TokenSource): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch: Dispatch) =>
    function brokerTokenInterceptor(opts: Dispatcher.DispatchOptions, handler: Handler): boolean {
      // compose() hands every interceptor a handler of undici's current (onResponse*) kind.
      const downstream = handler
      const send = (token: BrokerToken, canRetry: boolean): void => {
        const onUnauthorized = (replay: () => void): void => {
          source.rejected(token.access_token).then(
            (fresh) => (fresh.access_token === token.access_token ? replay() : send(fresh, false)),
            () => replay(),
          )
        }
        dispatch(
          { ...opts, headers: mergeHeaders(opts.headers, token.headers) },
          new UnauthorizedHandler(downstream, canRetry, onUnauthorized),
        )
      }
      const held = source.cached()
      if (held !== undefined) send(held, replayable(opts.body))
      else {
        source.token().then(
          (token) => send(token, replayable(opts.body)),
          (err: Error) => downstream.onResponseError?.(null as unknown as Controller, err),
        )
      }
      return true
    }
}
