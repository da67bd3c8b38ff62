import type { TSchema } from '@sinclair/typebox'
import type { TypeCheck } from '@sinclair/typebox/compiler'
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors'
import { Value } from '@sinclair/typebox/value'

type Json = Record<string, unknown>
type Annotated = TSchema & {
  errorMessage?: string
  discriminator?: string
  idNoun?: string
  anyOf?: TSchema[]
  properties?: Record<string, TSchema>
  patternProperties?: Record<string, TSchema>
}

const isObject = (value: unknown): value is Json =>
  value !== null && typeof value === 'object' && !Array.isArray(value)

/**
 * The one line that says what is wrong with `value`, or undefined when it meets `check`'s schema.
 * The line starts with the field's path (`credentials.adobe-ims.scopes[0]`) and never quotes a
 * value: only the schema's own words (its `errorMessage`, its field names and patterns).
 */
export function firstProblem(check: TypeCheck<TSchema>, value: unknown): string | undefined {
  if (check.Check(value)) return undefined
  const first = check.Errors(value).First()
  if (first === undefined) return 'is invalid'
  return describe(value, narrow(first))
}

/** A union's error says only "no variant matched": look inside the variant the input meant. */
function narrow(error: ValueError): ValueError {
  if (error.type !== ValueErrorType.Union) return error
  const schema = error.schema as Annotated
  const variants = schema.anyOf ?? []
  const { value } = error
  let chosen: TSchema | undefined
  if (schema.discriminator !== undefined) {
    if (!isObject(value)) return error
    const tag = schema.discriminator
    chosen = variants.find((v) => (v as Annotated).properties?.[tag]?.const === value[tag])
    if (chosen === undefined) {
      const tagSchema = (variants[0] as Annotated | undefined)?.properties?.[tag]
      if (tagSchema === undefined) return error
      return { ...error, type: ValueErrorType.Literal, schema: tagSchema, path: `${error.path}/${tag}` }
    }
  } else {
    // Variants of different JSON kinds (a reference or a list of them): the input's kind decides.
    const kind = Array.isArray(value) ? 'array' : isObject(value) ? 'object' : 'other'
    const matching = variants.filter((v) => kindOf(v) === kind)
    if (matching.length !== 1) return error
    chosen = matching[0]
  }
  const inner = chosen === undefined ? undefined : Value.Errors(chosen, value).First()
  if (inner === undefined) return error
  return narrow({ ...inner, path: error.path + inner.path })
}

function kindOf(schema: TSchema): string {
  const s = schema as Annotated
  if (s.type === 'array') return 'array'
  if (s.type === 'object') return 'object'
  if (s.anyOf?.every((v) => kindOf(v) === 'object')) return 'object'
  return 'other'
}

function describe(root: unknown, error: ValueError): string {
  const schema = error.schema as Annotated
  const field = fieldName(root, error.path)
  if (error.type === ValueErrorType.ObjectAdditionalProperties) {
    if (schema.patternProperties !== undefined) {
      const pattern = Object.keys(schema.patternProperties)[0] ?? ''
      return `${field} is not a valid ${schema.idNoun ?? 'name'} (${pattern})`
    }
    const known = Object.keys(schema.properties ?? {}).join(', ')
    const atTop = error.path.lastIndexOf('/') === 0
    const at = atTop ? `(top level).${field}` : field
    return `${at} is not a known field (expected one of: ${known})`
  }
  const label = field === '' ? 'the file' : field
  return `${label} ${schema.errorMessage ?? `is invalid (${error.message})`}`
}

/** `/clients/ops-tools/key/1` → `clients.ops-tools.key[1]`; array positions are told from the input. */
function fieldName(root: unknown, pointer: string): string {
  if (pointer === '') return ''
  let at: unknown = root
  let name = ''
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(at)) {
      name += `[${segment}]`
      at = at[Number(segment)]
    } else {
      name += name === '' ? segment : `.${segment}`
      at = isObject(at) ? at[segment] : undefined
    }
  }
  return name
}
