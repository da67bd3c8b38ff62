import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A certificate and its key, as PEM text and as files (for the *_FILE variables). */
export interface Issued {
  cert: string
  key: string
  certFile: string
  keyFile: string
}

export interface TestCa extends Issued {
  /**
   * A leaf usable as server and client certificate, for `names` (subjectAltName entries; by
   * default 127.0.0.1 and localhost). Only `DNS:localhost` makes a server that must be reached by name.
   */
  issue(name: string, names?: readonly string[]): Promise<Issued>
}

const DEFAULT_NAMES = ['IP:127.0.0.1', 'DNS:localhost'] as const

export interface CertDir {
  dir: string
  /** A new CA, made now with openssl: nothing private is committed, nothing outlives the test file. */
  ca(name: string): Promise<TestCa>
  remove(): Promise<void>
}

const openssl = async (args: string[], cwd: string) => {
  try {
    await run('openssl', args, { cwd })
  } catch (err) {
    // No skipping: without openssl these tests fail, and say why.
    throw new Error(`openssl ${args[0]} failed (is openssl installed?): ${(err as Error).message}`)
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

/**
 * Test-only certificates under one temporary directory (for the tests and the Redis topologies);
 * remove() from an afterAll/onTestFinished hook, or from the topology's stop().
 */
export async function certDir(): Promise<CertDir> {
  const dir = await mkdtemp(join(tmpdir(), 'token-broker-certs-'))
  const load = async (base: string): Promise<Issued> => {
    const certFile = join(dir, `${base}.crt`)
    const keyFile = join(dir, `${base}.key`)
    return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8'), certFile, keyFile }
  }
  return {
    dir,
    remove: () => rm(dir, { recursive: true, force: true }),
    async ca(name) {
      await writeFile(
        join(dir, `${name}.ext`),
        'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n',
      )
      await openssl(
        ['req', '-new', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`],
        dir,
      )
      await openssl(
        [
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          '-signkey',
          `${name}.key`,
          '-out',
          `${name}.crt`,
          '-days',
          '2',
          '-extfile',
          `${name}.ext`,
        ],
        dir,
      )
      const ca = await load(name)
      let serial = 1
      return {
        ...ca,
        async issue(leaf, names = DEFAULT_NAMES) {
          await writeFile(
            join(dir, `${leaf}.ext`),
            `basicConstraints=CA:FALSE\nsubjectAltName=${names.join(',')}\n` +
              'extendedKeyUsage=serverAuth,clientAuth\n',
          )
          await openssl(
            [
              'req',
              '-new',
              ...EC_KEY,
              '-keyout',
              `${leaf}.key`,
              '-out',
              `${leaf}.csr`,
              '-subj',
              `/CN=${leaf}`,
            ],
            dir,
          )
          await openssl(
            [
              'x509',
              '-req',
              '-in',
              `${leaf}.csr`,
              '-CA',
              `${name}.crt`,
              '-CAkey',
              `${name}.key`,
              '-set_serial',
              String(serial++),
              '-out',
              `${leaf}.crt`,
              '-days',
              '2',
              '-extfile',
              `${leaf}.ext`,
            ],
            dir,
          )
          return load(leaf)
        },
      }
    },
  }
}
