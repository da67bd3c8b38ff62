import type { Dispatcher } from 'undici'

type Headers = Dispatcher.DispatchOptions['headers']

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
