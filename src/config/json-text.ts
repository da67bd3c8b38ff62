import { type JSONPath, visit } from 'jsonc-parser'
import { ConfigError } from './errors.js'

/** `['clients', 'ops-tools', 'key', 1]` → `clients.ops-tools.key[1]`. */
export function formatPath(path: JSONPath): string {
  let name = ''
  for (const segment of path) {
    if (typeof segment === 'number') name += `[${segment}]`
    else name += name === '' ? segment : `.${segment}`
  }
  return name
}

/**
 * Parses a config file's text as strict JSON and refuses a name that appears twice in one object:
 * JSON.parse would silently keep the last, so an edit meant to replace a secret reference could be
 * ignored, or a stale line win. Neither error quotes the text: it may hold a secret.
 */
export function parseJsonText(text: string): unknown {
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch {
    // JSON.parse quotes the text around the fault, which could be a secret: say only that it is bad.
    throw new ConfigError('is not valid JSON')
  }
  // The text is valid JSON here, so the tolerant parser sees exactly the structure JSON.parse saw.
  const seen: Set<string>[] = []
  let duplicate: string | undefined
  visit(text, {
    onObjectBegin: () => {
      seen.push(new Set())
    },
    onObjectEnd: () => {
      seen.pop()
    },
    onObjectProperty: (name, _offset, _length, _line, _column, pathSupplier) => {
      const names = seen[seen.length - 1]
      if (names === undefined || duplicate !== undefined) return
      if (names.has(name)) duplicate = formatPath([...pathSupplier(), name])
      names.add(name)
    },
  })
  if (duplicate !== undefined) {
    throw new ConfigError(
      `${duplicate || '(an empty name)'} appears twice in its object: give each name once`,
    )
  }
  return document
}
