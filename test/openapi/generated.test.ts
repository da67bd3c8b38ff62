import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { generateOpenapi, OPENAPI_PATH } from '../../tools/openapi.js'

describe('openapi.yaml', () => {
  it('is what `npm run openapi` generates from the route schemas (run it after changing them)', async () => {
    const committed = await readFile(OPENAPI_PATH, 'utf8')
    expect(committed.startsWith('# Generated from the route schemas')).toBe(true)
    expect(await generateOpenapi()).toBe(committed)
  })
})
