import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { replayableBody } from './body.js'
import type { BrokerToken } from './broker-api.js'
import type { TokenSource } from './fetch.js'
import { mergeHeaders } from './headers.js'

type Dispatch = Dispatcher['dispatch']
type Handler = Dispatcher.DispatchHandler
type Controller = Dispatcher.DispatchController
type IncomingHeaders = IncomingHttpHeaders

/** The body of a 401 kept to hand on when no retry happens; larger bodies are cut. */
const MAX_KEPT_BODY = 64 * 1024

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

/** undici's older handler interface, which its Client speaks natively. */
interface LegacyHandler {
  onConnect?(abort: (err?: Error) => void, context?: unknown): void
  onResponseStarted?(): void
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusMessage: string): boolean
  onData?(chunk: Buffer): boolean
  onComplete?(trailers: string[] | null): void
  onError?(err: Error): void
  onUpgrade?(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void
}

/**
 * UnauthorizedHandler on the older interface. compose() hands interceptors a wrapper that still
 * speaks it; talking it end to end spares undici converting every response's headers to an object
 * and back, most of the interceptor's cost per call.
 */
class LegacyUnauthorizedHandler implements LegacyHandler {
  #held:
    | {
        status: number
        rawHeaders: Buffer[]
        resume: () => void
        message: string
        chunks: Buffer[]
        size: number
      }
    | undefined

  constructor(
    private readonly downstream: LegacyHandler,
    private readonly canRetry: boolean,
    private readonly onUnauthorized: (replay: () => void) => void,
  ) {}

  onConnect(abort: (err?: Error) => void, context?: unknown): void {
    this.downstream.onConnect?.(abort, context)
  }

  onResponseStarted(): void {
    this.downstream.onResponseStarted?.()
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    this.downstream.onUpgrade?.(statusCode, rawHeaders, socket)
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusMessage: string): boolean {
    if (statusCode === 401 && this.canRetry) {
      this.#held = { status: statusCode, rawHeaders, resume, message: statusMessage, chunks: [], size: 0 }
      return true
    }
    return this.downstream.onHeaders?.(statusCode, rawHeaders, resume, statusMessage) ?? true
  }

  onData(chunk: Buffer): boolean {
    const held = this.#held
    if (held === undefined) return this.downstream.onData?.(chunk) ?? true
    if (held.size < MAX_KEPT_BODY) {
      const part = chunk.subarray(0, MAX_KEPT_BODY - held.size)
      held.chunks.push(part)
      held.size += part.length
    }
    return true
  }

  onComplete(trailers: string[] | null): void {
    const held = this.#held
    if (held === undefined) {
      this.downstream.onComplete?.(trailers)
      return
    }
    const d = this.downstream
    this.onUnauthorized(() => {
      d.onHeaders?.(held.status, held.rawHeaders, held.resume, held.message)
      for (const chunk of held.chunks) d.onData?.(chunk)
      d.onComplete?.(trailers)
    })
  }

  onError(err: Error): void {
    this.downstream.onError?.(err)
  }
}

/**
 * An undici compose interceptor: adds the credential's headers to every request and, on a 401,
 * reports the token rejected and sends the request once more with the new one.
 */
export function tokenInterceptor(source: TokenSource): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch: Dispatch) =>
    function brokerTokenInterceptor(opts: Dispatcher.DispatchOptions, handler: Handler): boolean {
      const legacy = typeof (handler as LegacyHandler).onHeaders === 'function'
      const downstream = handler
      const send = (token: BrokerToken, canRetry: boolean): void => {
        const onUnauthorized = (replay: () => void): void => {
          source.rejected(token.access_token).then(
            (fresh) => (fresh.access_token === token.access_token ? replay() : send(fresh, false)),
            () => replay(),
          )
        }
        const next = legacy
          ? new LegacyUnauthorizedHandler(handler as LegacyHandler, canRetry, onUnauthorized)
          : new UnauthorizedHandler(downstream, canRetry, onUnauthorized)
        dispatch({ ...opts, headers: mergeHeaders(opts.headers, token.headers) }, next as Handler)
      }
      const held = source.cached()
      if (held !== undefined) send(held, replayableBody(opts.body))
      else {
        source.token().then(
          (token) => send(token, replayableBody(opts.body)),
          (err: Error) =>
            legacy
              ? (handler as LegacyHandler).onError?.(err)
              : downstream.onResponseError?.(null as unknown as Controller, err),
        )
      }
      return true
    }
}
