import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { replayableBody } from '../../client/src/body.js'

describe('client: which request bodies are replayed after a 401', () => {
  it('replays no body, text, bytes of any view and URL-encoded forms', () => {
    const bytes = new TextEncoder().encode('x')
    for (const body of [
      undefined,
      null,
      '',
      'text',
      Buffer.from('x'),
      bytes,
      new Uint16Array(2),
      new DataView(bytes.buffer),
      bytes.buffer,
      new URLSearchParams({ a: '1' }),
    ]) {
      expect(replayableBody(body), String(body)).toBe(true)
    }
  })

  it('never replays what is read as a stream: streams, async iterables, forms, blobs', () => {
    async function* chunks() {
      yield 'x'
    }
    const form = new FormData()
    form.append('file', new Blob(['x']), 'x.txt')
    for (const body of [
      new ReadableStream(),
      Readable.from(['x']),
      chunks(),
      form,
      new Blob(['x']),
      { not: 'a body' },
    ]) {
      expect(replayableBody(body), Object.prototype.toString.call(body)).toBe(false)
    }
  })
})
