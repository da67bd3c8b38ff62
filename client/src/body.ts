/**
 * Whether a request body can be sent a second time, after a 401, exactly as the first time. One rule
 * for `fetch()` and the undici interceptor:
 *
 * - replayable: no body (`undefined`, `null`), a string, bytes (a Buffer, any typed array or
 *   DataView, an ArrayBuffer), `URLSearchParams`: values the transport reads without consuming;
 * - not replayable: everything else, i.e. streams (a `ReadableStream`, a Node `Readable`), async
 *   iterables, `FormData` and `Blob`s (their parts are read as streams and may hold files). Such a
 *   request's 401 is returned as it is.
 */
export function replayableBody(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    ArrayBuffer.isView(body) ||
    body instanceof ArrayBuffer ||
    body instanceof URLSearchParams
  )
}
