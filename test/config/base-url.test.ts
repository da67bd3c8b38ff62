import { describe, expect, it } from 'vitest'
import { DEFAULT_BASE_URLS, resolveBaseUrl } from '../../src/config/base-url.js'

const INSECURE = /^must be an https: URL \(plain http: is allowed only for loopback hosts/

describe('resolveBaseUrl', () => {
  it('uses the environment defaults', () => {
    expect(resolveBaseUrl({ type: 'ims', environment: 'production' }, false)).toBe(
      'https://ims-na1.adobelogin.com',
    )
    expect(resolveBaseUrl({ type: 'ims', environment: 'stage' }, false)).toBe(
      'https://ims-na1-stg1.adobelogin.com',
    )
    expect(resolveBaseUrl({ type: 'eqp', environment: 'production' }, false)).toBe(
      'https://commercedeveloper-api.adobe.com',
    )
    expect(resolveBaseUrl({ type: 'eqp', environment: 'sandbox' }, false)).toBe(
      'https://commercedeveloper-sandbox-api.adobe.com',
    )
    expect(DEFAULT_BASE_URLS.ims.production).toBe('https://ims-na1.adobelogin.com')
  })

  it('refuses an environment without a default, including inherited property names', () => {
    expect(() => resolveBaseUrl({ type: 'ims', environment: 'sandbox' }, false)).toThrow(
      'has no default for environment "sandbox"',
    )
    expect(() => resolveBaseUrl({ type: 'eqp', environment: 'toString' }, false)).toThrow(/has no default/)
  })

  it('keeps a path prefix and drops trailing slashes', () => {
    expect(
      resolveBaseUrl({ type: 'ims', environment: 'x', baseUrl: 'https://proxy.example/adobe/ims/' }, false),
    ).toBe('https://proxy.example/adobe/ims')
    expect(resolveBaseUrl({ type: 'ims', environment: 'x', baseUrl: 'https://proxy.example/' }, false)).toBe(
      'https://proxy.example',
    )
    expect(
      resolveBaseUrl({ type: 'eqp', environment: 'x', baseUrl: 'https://proxy.example:8443' }, false),
    ).toBe('https://proxy.example:8443')
  })

  it('accepts plain http only for loopback hosts', () => {
    for (const baseUrl of [
      'http://localhost:8081',
      'http://127.0.0.1:1',
      'http://127.9.8.7',
      'http://[::1]:9000',
    ]) {
      expect(resolveBaseUrl({ type: 'ims', environment: 'stage', baseUrl }, false)).toBe(baseUrl)
    }
    for (const baseUrl of [
      'http://sim:8081',
      'http://10.0.0.5',
      'http://128.0.0.1',
      'http://localhost.evil.com',
    ]) {
      expect(() => resolveBaseUrl({ type: 'ims', environment: 'stage', baseUrl }, false)).toThrow(INSECURE)
    }
  })

  it('accepts plain http anywhere when insecure upstreams are allowed', () => {
    expect(resolveBaseUrl({ type: 'eqp', environment: 'sandbox', baseUrl: 'http://sim:8081/' }, true)).toBe(
      'http://sim:8081',
    )
  })

  it('refuses other schemes, garbage, userinfo, queries and fragments', () => {
    const r =
      (baseUrl: string, insecure = true) =>
      () =>
        resolveBaseUrl({ type: 'ims', environment: 'stage', baseUrl }, insecure)
    expect(r('ftp://ims.example')).toThrow(INSECURE)
    expect(r('not a url')).toThrow('is not a valid URL')
    expect(r('')).toThrow('is not a valid URL')
    expect(r('https://user:pass@ims.example')).toThrow('must not contain credentials')
    expect(r('https://user@ims.example')).toThrow('must not contain credentials')
    expect(r('https://ims.example/?a=1')).toThrow('query string')
    expect(r('https://ims.example/#x')).toThrow('fragment')
  })

  it('never echoes the URL (it could hold a password)', () => {
    try {
      resolveBaseUrl({ type: 'ims', environment: 'stage', baseUrl: 'https://u:hunter2@ims.example' }, false)
      expect.unreachable()
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2')
    }
  })
})
