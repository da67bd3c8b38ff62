// Static checks of the container images and the compose stack: no Docker engine is needed. Every check
// reads the real files (Dockerfile, .dockerignore, docker-compose.yml, docker/) and the environment
// schema, so editing them into an unsafe or inconsistent state makes these tests fail.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { isAbsolute, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { EnvSchema } from '../../src/config/env.js'
import { CREDENTIAL_ID_PATTERN } from '../../src/core/credential.js'
import { NODE_FLAGS } from '../../src/node-flags.js'

type Dict = Record<string, unknown>

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const fromRoot = (...parts: string[]) => resolve(repoRoot, ...parts)
const read = (...parts: string[]) => readFileSync(fromRoot(...parts), 'utf8')

const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v)
function dict(v: unknown, what: string): Dict {
  if (!isDict(v)) throw new Error(`${what} is not a mapping`)
  return v
}
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : [])

// The environment schema is the single source of the variables the broker reads.

const ENV_VARS = new Set(Object.keys(EnvSchema.properties))

// ---------------------------------------------------------------------------------------------------
// Dockerfile: a small parser (continuations, comments, stages, global ARG defaults).

interface Instruction {
  readonly keyword: string
  readonly args: string
}
interface Stage {
  readonly image: string
  readonly name: string | undefined
  readonly instructions: Instruction[]
}

function parseDockerfile(text: string): { globalArgs: Map<string, string>; stages: Stage[] } {
  const logical: string[] = []
  let current = ''
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line.startsWith('#') || (current === '' && line === '')) continue
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `
      continue
    }
    logical.push(current + line)
    current = ''
  }
  if (current.trim() !== '') logical.push(current)

  const globalArgs = new Map<string, string>()
  const stages: Stage[] = []
  for (const line of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(line)
    if (!m) continue
    const keyword = m[1]!.toUpperCase()
    const args = m[2]!.trim()
    if (keyword === 'FROM') {
      const words = args.split(/\s+/).filter((w) => !w.startsWith('--'))
      const image = words[0]!.replace(/\$\{?(\w+)\}?/g, (_, name: string) => globalArgs.get(name) ?? '')
      const asAt = words.findIndex((w) => w.toUpperCase() === 'AS')
      stages.push({ image, name: asAt >= 0 ? words[asAt + 1] : undefined, instructions: [] })
    } else if (stages.length === 0) {
      if (keyword === 'ARG') {
        const [name, value = ''] = args.split('=', 2)
        globalArgs.set(name!, value)
      }
    } else {
      stages.at(-1)!.instructions.push({ keyword, args })
    }
  }
  return { globalArgs, stages }
}

/** `ENV A=1 B="two"` and the legacy `ENV A 1`. */
function envOfInstruction(args: string): Map<string, string> {
  const out = new Map<string, string>()
  if (!/^[\w.-]+=/.test(args)) {
    const m = /^(\S+)\s+(.*)$/.exec(args)
    if (m) out.set(m[1]!, m[2]!)
    return out
  }
  for (const m of args.matchAll(/([\w.-]+)=("([^"]*)"|'([^']*)'|(\S*))/g)) {
    out.set(m[1]!, m[3] ?? m[4] ?? m[5] ?? '')
  }
  return out
}

const execForm = (args: string): string[] | undefined => {
  try {
    const v: unknown = JSON.parse(args)
    return Array.isArray(v) ? v.map(String) : undefined
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------------
// Compose helpers.

/** `${VAR:-default}` / `${VAR-default}` → default, `${VAR}` → ''. The host environment is ignored. */
const interpolateDefaults = (value: string) =>
  value.replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_, _name: string, def: string | undefined) => def ?? '')

function environmentOf(service: Dict): Map<string, string> {
  const env = new Map<string, string>()
  const raw = service.environment
  if (Array.isArray(raw)) {
    for (const item of raw.map(String)) {
      const eq = item.indexOf('=')
      env.set(eq < 0 ? item : item.slice(0, eq), eq < 0 ? '' : item.slice(eq + 1))
    }
  } else if (isDict(raw)) {
    for (const [k, v] of Object.entries(raw)) env.set(k, v === null ? '' : String(v))
  }
  const envFiles = typeof service.env_file === 'string' ? [service.env_file] : (service.env_file ?? [])
  for (const f of Array.isArray(envFiles) ? envFiles : []) {
    const path = typeof f === 'string' ? f : String(dict(f, 'env_file entry').path)
    for (const line of read(path).split(/\r?\n/)) {
      const m = /^\s*(?:export\s+)?([\w.-]+)\s*=(.*)$/.exec(line)
      if (m && !line.trim().startsWith('#')) env.set(m[1]!, m[2]!.trim())
    }
  }
  return env
}

const networksOf = (service: Dict): string[] => {
  if (service.network_mode !== undefined) return []
  if (Array.isArray(service.networks)) return service.networks.map(String)
  if (isDict(service.networks)) return Object.keys(service.networks)
  return ['default']
}

/** The host address a `ports` entry binds to; undefined when it binds every interface. */
function hostIpOf(entry: unknown): string | undefined {
  if (isDict(entry)) return entry.host_ip === undefined ? undefined : String(entry.host_ip)
  const spec = String(entry).replace(/\/\w+$/, '')
  if (spec.startsWith('[')) return spec.slice(1, spec.indexOf(']'))
  const parts = spec.split(':')
  return parts.length === 3 ? parts[0] : undefined
}

interface Mount {
  readonly source: string
  readonly target: string
  readonly readOnly: boolean
}
function volumesOf(service: Dict): Mount[] {
  return (Array.isArray(service.volumes) ? service.volumes : []).map((v: unknown) => {
    if (isDict(v)) {
      return { source: String(v.source), target: String(v.target), readOnly: v.read_only === true }
    }
    const [source = '', target = '', mode = ''] = String(v).split(':')
    return { source, target, readOnly: mode.split(',').includes('ro') }
  })
}

/** Container path → compose secret name, for the secrets a service mounts. */
function secretMountsOf(service: Dict): Map<string, string> {
  const out = new Map<string, string>()
  for (const s of Array.isArray(service.secrets) ? service.secrets : []) {
    const source = isDict(s) ? String(s.source) : String(s)
    const target = isDict(s) && s.target !== undefined ? String(s.target) : source
    out.set(target.startsWith('/') ? target : `/run/secrets/${target}`, source)
  }
  return out
}

const seconds = (d: unknown): number => {
  let total = 0
  for (const m of String(d).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as 'ms' | 's' | 'm' | 'h']
  }
  return total
}

const healthcheckDisabled = (service: Dict) => {
  if (!isDict(service.healthcheck)) return false
  const test = service.healthcheck.test
  return service.healthcheck.disable === true || (Array.isArray(test) && test[0] === 'NONE')
}

// ---------------------------------------------------------------------------------------------------
// Broker config files: secret references.

type Ref = { kind: 'env' | 'file'; value: string; at: string }

const isRef = (v: unknown): boolean => {
  if (!isDict(v)) return false
  const keys = Object.keys(v)
  return (
    keys.length === 1 &&
    (keys[0] === 'env' || keys[0] === 'file') &&
    typeof v[keys[0]] === 'string' &&
    (v[keys[0]] as string).length > 0
  )
}

/** Every property whose name says it holds a secret must be a reference; returns all references. */
function collectRefs(node: unknown, at: string, refs: Ref[], literals: string[]): Ref[] {
  if (Array.isArray(node)) {
    node.forEach((v, i) => {
      collectRefs(v, `${at}[${i}]`, refs, literals)
    })
  } else if (isDict(node)) {
    if (isRef(node)) {
      const [kind, value] = Object.entries(node)[0] as ['env' | 'file', string]
      refs.push({ kind, value, at })
      return refs
    }
    for (const [k, v] of Object.entries(node)) {
      const path = `${at}.${k}`
      if (/secret|password|passphrase|token|key$/i.test(k) && !isRef(v)) literals.push(path)
      collectRefs(v, path, refs, literals)
    }
  }
  return refs
}

const CREDENTIAL_ID = new RegExp(CREDENTIAL_ID_PATTERN)
const ENVIRONMENTS: Record<string, string[]> = {
  ims: ['production', 'stage'],
  eqp: ['production', 'sandbox'],
}

function checkBrokerConfig(config: Dict): void {
  const credentials = dict(config.credentials, 'credentials')
  const clients = dict(config.clients, 'clients')
  expect(Object.keys(credentials).length).toBeGreaterThan(0)
  expect(Object.keys(clients).length).toBeGreaterThan(0)
  for (const [id, raw] of Object.entries(credentials)) {
    const c = dict(raw, `credential ${id}`)
    expect(id, 'credential id').toMatch(CREDENTIAL_ID)
    expect(Object.keys(ENVIRONMENTS), `${id}.type`).toContain(c.type)
    expect(ENVIRONMENTS[String(c.type)], `${id}.environment`).toContain(c.environment)
    if (c.type === 'ims') {
      expect(typeof c.clientId, `${id}.clientId`).toBe('string')
      expect(isRef(c.clientSecret), `${id}.clientSecret must be {"env"} or {"file"}`).toBe(true)
      expect(strings(c.scopes).length, `${id}.scopes`).toBeGreaterThan(0)
    } else {
      expect(typeof c.appId, `${id}.appId`).toBe('string')
      expect(isRef(c.appSecret), `${id}.appSecret must be {"env"} or {"file"}`).toBe(true)
    }
  }
  for (const [id, raw] of Object.entries(clients)) {
    const c = dict(raw, `client ${id}`)
    expect(isRef(c.key), `client ${id}.key must be {"env"} or {"file"}`).toBe(true)
    const allowed = strings(c.credentials)
    expect(allowed.length, `client ${id}.credentials`).toBeGreaterThan(0)
    for (const cred of allowed) {
      if (cred !== '*') expect(Object.keys(credentials), `client ${id} names ${cred}`).toContain(cred)
    }
  }
  const literals: string[] = []
  collectRefs(config, '$', [], literals)
  expect(literals, 'secret-looking fields holding a literal').toEqual([])
}

// ---------------------------------------------------------------------------------------------------

const ALLOWED_ENV = new Set([...ENV_VARS, 'NODE_ENV'])

const dockerfile = parseDockerfile(read('Dockerfile'))
const stageNamed = (name: string) => dockerfile.stages.find((s) => s.name === name)
/** The broker's image: `docker build .` builds the last stage, so the broker must be it. */
const finalStage = dockerfile.stages.at(-1)
const finalOf = (keyword: string) => (finalStage?.instructions ?? []).filter((i) => i.keyword === keyword)
const simulatorStage = stageNamed('simulator')
const simulatorOf = (keyword: string) =>
  (simulatorStage?.instructions ?? []).filter((i) => i.keyword === keyword)
const runsOf = (s: Stage) =>
  s.instructions
    .filter((i) => i.keyword === 'RUN')
    .map((i) => i.args)
    .join('\n')
/** `COPY --from=<stage> <source>... <dest>`: the stage and the sources. */
const copiesOf = (s: Stage) =>
  s.instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/)
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length)
      return { from, sources: words.filter((w) => !w.startsWith('--')).slice(0, -1) }
    })

const compose = dict(parse(read('docker-compose.yml'), { merge: true }), 'docker-compose.yml')
const services = dict(compose.services, 'services')
const networkDefs = isDict(compose.networks) ? compose.networks : {}
const secretDefs = isDict(compose.secrets) ? compose.secrets : {}
const service = (name: string) => dict(services[name], `service ${name}`)

const builtHere = (s: Dict) => s.build !== undefined
/** The Dockerfile stage a service is built from (the last one when compose names no target). */
const targetOf = (s: Dict): Stage | undefined => {
  const target = isDict(s.build) ? s.build.target : undefined
  return target === undefined ? finalStage : stageNamed(String(target))
}
const brokerNames = Object.keys(services).filter((n) => {
  const s = service(n)
  return builtHere(s) && targetOf(s) === finalStage
})
const simulatorNames = Object.keys(services).filter((n) => {
  const s = service(n)
  return builtHere(s) && simulatorStage !== undefined && targetOf(s) === simulatorStage
})
const redisNames = Object.keys(services).filter((n) => String(service(n).image ?? '').startsWith('redis'))

const isInternal = (network: string) => isDict(networkDefs[network]) && networkDefs[network].internal === true

const brokerConfig = dict(JSON.parse(read('docker', 'broker.config.json')), 'docker/broker.config.json')
const exampleConfig = dict(
  JSON.parse(read('docker', 'broker.config.example.json')),
  'docker/broker.config.example.json',
)
const demoSecretValues = readdirSync(fromRoot('docker', 'secrets')).map((f) =>
  read('docker', 'secrets', f).replace(/\r?\n$/, ''),
)

describe('environment schema', () => {
  it('lists the configuration variables the images and compose file are checked against', () => {
    expect(ENV_VARS.size).toBeGreaterThanOrEqual(10)
    for (const v of ['PORT', 'HOST', 'BROKER_CONFIG', 'REDIS_URL', 'TOKEN_ENCRYPTION_KEY']) {
      expect(ENV_VARS).toContain(v)
    }
  })
})

describe('Dockerfile', () => {
  it('is multi-stage and ships only the build and production dependencies', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2)
    const runs = runsOf
    const buildStage = dockerfile.stages.find((s) => /npm run build/.test(runs(s)))
    expect(buildStage, 'a stage runs `npm run build`').toBeDefined()
    expect(runs(buildStage!)).toMatch(/npm ci\b/)
    // NODE_ENV=production before `npm ci` would drop the dev dependencies tsc needs.
    for (const i of buildStage!.instructions.filter((i) => i.keyword === 'ENV')) {
      expect(envOfInstruction(i.args).get('NODE_ENV')).not.toBe('production')
    }
    expect(
      dockerfile.stages.some((s) => /npm ci\b[^\n]*--omit=dev/.test(runs(s))),
      'production dependencies come from `npm ci --omit=dev`',
    ).toBe(true)
    expect(finalStage).not.toBe(buildStage)

    for (const copy of finalOf('COPY')) {
      const words = copy.args.split(/\s+/).filter((w) => !w.startsWith('--'))
      for (const src of words.slice(0, -1)) {
        expect(['package.json', 'package-lock.json', 'dist', 'node_modules']).toContain(
          src.replace(/^\/app\//, '').replace(/\/$/, ''),
        )
      }
    }
  })

  it('leaves the simulator out of the broker image', () => {
    const dist = copiesOf(finalStage!).filter((c) => c.sources.some((src) => /^(\/app\/)?dist\/?$/.test(src)))
    expect(dist.length, 'the final stage copies dist/').toBe(1)
    const from = stageNamed(dist[0]!.from ?? '')
    expect(from, `the stage dist/ comes from (${dist[0]!.from})`).toBeDefined()
    // Built in that stage, then moved out of dist/ before anything copies it.
    const runs = runsOf(from!)
    expect(runs).toMatch(/npm run build/)
    expect(runs).toMatch(/\b(mv|rm -rf)\s+dist\/simulator\b/)
    for (const c of copiesOf(finalStage!)) {
      for (const src of c.sources)
        expect(src, 'the broker image copies no simulator file').not.toMatch(/simulator/)
    }
  })

  it('builds the simulator as its own target: its files alone, no dependencies, non-root', () => {
    expect(simulatorStage, 'a `FROM ... AS simulator` stage').toBeDefined()
    expect(simulatorStage).not.toBe(finalStage)
    const sources = copiesOf(simulatorStage!).flatMap((c) => c.sources)
    expect(sources).toContain('package.json')
    expect(sources.some((src) => /simulator/.test(src))).toBe(true)
    for (const src of sources) expect(src).not.toMatch(/node_modules|^(\/app\/)?dist\/?$/)
    const user = simulatorOf('USER').at(-1)?.args.split(':')[0]
    expect(['root', '0', undefined]).not.toContain(user)
    const cmd = execForm(simulatorOf('CMD').at(-1)?.args ?? '')
    expect(cmd).toEqual(['node', 'dist/simulator/main.js'])
    const env = new Map<string, string>()
    for (const i of simulatorOf('ENV')) for (const [k, v] of envOfInstruction(i.args)) env.set(k, v)
    expect(env.get('SIMULATOR_HOST')).toBe('0.0.0.0')
    const hc = simulatorOf('HEALTHCHECK').at(-1)?.args ?? ''
    expect(hc).toMatch(/\["node"/)
    expect(hc).toContain('SIMULATOR_PORT')
  })

  it('runs on Node 22 or 24 LTS, slim or alpine', () => {
    for (const stage of dockerfile.stages) {
      expect(stage.image).toMatch(/^(docker\.io\/(library\/)?)?node:(22|24)([.\d]*)-(([a-z]+-)?slim|alpine)/)
    }
  })

  it('runs as a non-root user', () => {
    const user = finalOf('USER').at(-1)?.args.split(':')[0]
    expect(user, 'the final stage sets USER').toBeDefined()
    expect(['root', '0']).not.toContain(user)
  })

  it('sets the container defaults and only variables the service reads', () => {
    const env = new Map<string, string>()
    for (const i of finalOf('ENV')) for (const [k, v] of envOfInstruction(i.args)) env.set(k, v)
    expect(env.get('HOST')).toBe('0.0.0.0')
    expect(env.get('NODE_ENV')).toBe('production')
    expect(env.get('PORT')).toBe('8080')
    for (const k of env.keys()) expect(ALLOWED_ENV, `ENV ${k}`).toContain(k)
    expect(finalOf('EXPOSE').map((i) => i.args)).toContain('8080')
  })

  it('starts node directly as PID 1 (no npm, no shell) and stops it with SIGTERM', () => {
    const cmd = execForm(finalOf('CMD').at(-1)?.args ?? '')
    expect(cmd, 'CMD in exec (JSON) form').toBeDefined()
    const entrypoint = execForm(finalOf('ENTRYPOINT').at(-1)?.args ?? '[]') ?? []
    const argv = [...entrypoint, ...cmd!]
    const nodeAt = argv.indexOf('node')
    // Only an init (tini) may come before node.
    expect(nodeAt, 'runs node').toBeGreaterThanOrEqual(0)
    for (const w of argv.slice(0, nodeAt)) expect(w).toMatch(/tini|^--?\w*$/)
    expect(argv).toContain('dist/server.js')
    // The broker's node flags, as npm start and the demo pass them.
    expect(argv.slice(nodeAt + 1, argv.indexOf('dist/server.js'))).toEqual(NODE_FLAGS)
    expect(argv.join(' ')).not.toMatch(/\bnpm\b|\bsh\b|\bbash\b/)
    const stop = finalOf('STOPSIGNAL').at(-1)?.args
    if (stop !== undefined) expect(stop).toBe('SIGTERM')
  })

  it('has a HEALTHCHECK on /healthz that needs nothing but node', () => {
    const hc = finalOf('HEALTHCHECK').at(-1)?.args ?? ''
    expect(hc).toMatch(/\bCMD\b/)
    expect(hc).not.toMatch(/^NONE/)
    expect(hc).toContain('/healthz')
    expect(hc).toMatch(/\["node"/)
    expect(hc).not.toMatch(/\b(curl|wget)\b/)
  })
})

describe('npm start', () => {
  it("runs dist/server.js with the broker's node flags, as the image does", () => {
    const { scripts } = JSON.parse(read('package.json')) as { scripts: Record<string, string> }
    expect(scripts.start).toBe(['node', ...NODE_FLAGS, 'dist/server.js'].join(' '))
  })
})

describe('.dockerignore', () => {
  const entries = read('.dockerignore')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
  it('keeps dependencies, VCS state and secrets out of the build context', () => {
    expect(entries.some((e) => /^(\*\*\/)?node_modules\/?$/.test(e))).toBe(true)
    expect(entries).toContain('.git')
    expect(entries).toContain('.env')
    expect(entries.some((e) => /^docker(\/secrets)?\/?$/.test(e))).toBe(true)
  })
})

describe('docker-compose.yml', () => {
  it('has broker, Redis and simulator services', () => {
    expect(brokerNames.length, 'broker services').toBeGreaterThan(0)
    expect(redisNames, 'a redis service').toHaveLength(1)
    expect(simulatorNames, 'a simulator service').toHaveLength(1)
  })

  it('runs at least two broker replicas from the Dockerfile', () => {
    const replicas = brokerNames
      .map((n) => service(n))
      .reduce((sum, s) => sum + Number(isDict(s.deploy) ? (s.deploy.replicas ?? 1) : 1), 0)
    expect(replicas).toBeGreaterThanOrEqual(2)
    for (const n of brokerNames) {
      expect(isDict(service(n).build) && service(n).build, `${n} builds the broker target`).toMatchObject({
        target: finalStage!.name,
      })
    }
    for (const n of [...brokerNames, ...simulatorNames]) {
      const build = service(n).build
      const dockerfilePath = isDict(build) ? String(build.dockerfile ?? 'Dockerfile') : 'Dockerfile'
      const context = isDict(build) ? String(build.context ?? '.') : String(build)
      expect(resolve(repoRoot, context, dockerfilePath), `${n} build`).toBe(fromRoot('Dockerfile'))
    }
  })

  it('publishes nothing beyond loopback and never uses the host network', () => {
    for (const [name, raw] of Object.entries(services)) {
      const s = dict(raw, name)
      expect(s.network_mode, `${name}.network_mode`).toBeUndefined()
      for (const p of Array.isArray(s.ports) ? s.ports : []) {
        expect(['127.0.0.1', '::1'], `${name} publishes ${JSON.stringify(p)}`).toContain(hostIpOf(p))
      }
    }
  })

  it('keeps Redis and the simulator on internal networks, unpublished', () => {
    for (const n of [...redisNames, ...simulatorNames]) {
      expect(service(n).ports, `${n}.ports`).toBeUndefined()
      for (const net of networksOf(service(n))) expect(isInternal(net), `${n} on ${net}`).toBe(true)
    }
  })

  it('serves the token API on an internal network shared with Redis and the simulator', () => {
    const redisNets = networksOf(service(redisNames[0]!))
    const simulatorNets = networksOf(service(simulatorNames[0]!))
    for (const n of brokerNames) {
      const internal = networksOf(service(n)).filter(isInternal)
      expect(internal.length, `${n} on an internal network`).toBeGreaterThan(0)
      expect(internal.some((net) => redisNets.includes(net))).toBe(true)
      expect(internal.some((net) => simulatorNets.includes(net))).toBe(true)
    }
    // A non-internal network exists only to carry a loopback-published port to the host.
    for (const [name, raw] of Object.entries(services)) {
      const s = dict(raw, name)
      for (const net of networksOf(s).filter((n) => !isInternal(n))) {
        expect(Array.isArray(s.ports) && s.ports.length > 0, `${name} on non-internal ${net}`).toBe(true)
      }
    }
  })

  it('has healthchecks: redis-cli ping, the broker image HEALTHCHECK, every service_healthy target', () => {
    const redis = service(redisNames[0]!)
    const test = isDict(redis.healthcheck) ? redis.healthcheck.test : undefined
    expect(strings(test).join(' ')).toMatch(/redis-cli.*ping/)
    /** A HEALTHCHECK in the Dockerfile stage the service is built from. */
    const imageHealthcheck = (s: Dict) =>
      builtHere(s) && (targetOf(s)?.instructions ?? []).some((i) => i.keyword === 'HEALTHCHECK')
    for (const n of [...brokerNames, ...simulatorNames]) {
      const s = service(n)
      expect(healthcheckDisabled(s), `${n} healthcheck disabled`).toBe(false)
      expect(imageHealthcheck(s) || isDict(s.healthcheck), `${n} healthcheck`).toBe(true)
    }
    for (const [name, raw] of Object.entries(services)) {
      const deps = dict(raw, name).depends_on
      for (const [dep, cond] of Object.entries(isDict(deps) ? deps : {})) {
        if (dict(cond, `${name}.depends_on.${dep}`).condition !== 'service_healthy') continue
        const target = service(dep)
        const hasCheck = isDict(target.healthcheck) || imageHealthcheck(target)
        expect(hasCheck && !healthcheckDisabled(target), `${dep} healthcheck for ${name}`).toBe(true)
      }
    }
  })

  it('starts brokers after Redis is healthy and gives them time to drain', () => {
    for (const n of brokerNames) {
      const deps = dict(service(n).depends_on, `${n}.depends_on`)
      expect(dict(deps[redisNames[0]!], `${n} → redis`).condition).toBe('service_healthy')
      expect(Object.keys(deps)).toContain(simulatorNames[0])
      // SIGTERM must be followed by an exit within 10 s: Docker's default 10 s grace leaves no margin.
      expect(seconds(service(n).stop_grace_period), `${n}.stop_grace_period`).toBeGreaterThan(10)
    }
  })

  it('sets only environment variables of the env schema (plus NODE_ENV) for the broker', () => {
    for (const n of brokerNames) {
      const env = environmentOf(service(n))
      for (const k of env.keys()) expect(ALLOWED_ENV, `${n} sets ${k}`).toContain(k)
    }
  })

  it('gives every replica the same Redis, encryption key and configuration', () => {
    const envs = brokerNames.map((n) => environmentOf(service(n)))
    for (const env of envs) {
      expect(env.get('REDIS_URL')).toMatch(new RegExp(`^rediss?://${redisNames[0]}(:\\d+)?/?`))
      const key = Buffer.from(interpolateDefaults(env.get('TOKEN_ENCRYPTION_KEY') ?? ''), 'base64')
      expect(key.length, 'TOKEN_ENCRYPTION_KEY is base64 of 32 bytes').toBe(32)
      expect(env.get('TOKEN_ENCRYPTION_KEY')).toBe(envs[0]!.get('TOKEN_ENCRYPTION_KEY'))
      expect(env.get('REDIS_URL')).toBe(envs[0]!.get('REDIS_URL'))
    }
    for (const n of brokerNames) {
      const configPath = environmentOf(service(n)).get('BROKER_CONFIG')
      const mount = volumesOf(service(n)).find((v) => v.target === configPath)
      expect(mount, `${n} mounts BROKER_CONFIG`).toBeDefined()
      expect(mount!.readOnly, `${n} mounts the config read-only`).toBe(true)
      expect(resolve(repoRoot, mount!.source)).toBe(fromRoot('docker', 'broker.config.json'))
    }
  })

  it('allows http upstreams only for the simulator on the internal network', () => {
    const insecure = Object.values(dict(brokerConfig.credentials, 'credentials')).some((c) => {
      const base = dict(c, 'credential').baseUrl
      if (typeof base !== 'string') return false
      const url = new URL(base)
      return url.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)
    })
    for (const n of brokerNames) {
      const flag = environmentOf(service(n)).get('ALLOW_INSECURE_UPSTREAM')
      expect(flag === 'true', `${n} ALLOW_INSECURE_UPSTREAM`).toBe(insecure)
    }
  })

  it('declares secrets as files under docker/secrets', () => {
    expect(Object.keys(secretDefs).length).toBeGreaterThan(0)
    for (const [name, raw] of Object.entries(secretDefs)) {
      const def = dict(raw, `secret ${name}`)
      expect(typeof def.file, `secret ${name} comes from a file`).toBe('string')
      const path = resolve(repoRoot, String(def.file))
      expect(relative(fromRoot('docker', 'secrets'), path)).not.toMatch(/^\.\.|^\//)
      expect(existsSync(path), `${def.file} exists`).toBe(true)
    }
  })
})

describe('docker/broker.config.json', () => {
  it('is a valid config whose secrets are all references', () => {
    checkBrokerConfig(brokerConfig)
    const creds = dict(brokerConfig.credentials, 'credentials')
    const types = Object.values(creds).map((c) => dict(c, 'credential').type)
    expect(types).toContain('ims')
    expect(types).toContain('eqp')
  })

  it('references only secret files every broker replica mounts', () => {
    const refs = collectRefs(brokerConfig, '$', [], [])
    expect(refs.length).toBeGreaterThan(0)
    for (const n of brokerNames) {
      const env = environmentOf(service(n))
      const mounts = secretMountsOf(service(n))
      for (const ref of refs) {
        if (ref.kind === 'env') {
          expect(env.has(ref.value), `${n} sets ${ref.value} for ${ref.at}`).toBe(true)
          continue
        }
        expect(ref.value, ref.at).toMatch(/^\/run\/secrets\/[^/]+$/)
        const secret = mounts.get(ref.value)
        expect(secret, `${n} mounts ${ref.value} (${ref.at})`).toBeDefined()
        const def = dict(secretDefs[secret!], `secret ${secret}`)
        expect(existsSync(resolve(repoRoot, String(def.file))), `${def.file} exists`).toBe(true)
      }
    }
  })

  it('points its credentials at the simulator, which checks the same secret files', () => {
    const sim = service(simulatorNames[0]!)
    const simEnv = environmentOf(sim)
    const dir = simEnv.get('SIMULATOR_SECRETS_DIR')
    expect(dir, 'SIMULATOR_SECRETS_DIR').toBeDefined()
    expect(simEnv.get('SIMULATOR_HOST')).toBe('0.0.0.0')
    const simMounts = secretMountsOf(sim)
    const brokerMounts = secretMountsOf(service(brokerNames[0]!))
    for (const [id, raw] of Object.entries(dict(brokerConfig.credentials, 'credentials'))) {
      const c = dict(raw, id)
      const url = new URL(String(c.baseUrl))
      expect(url.hostname, `${id}.baseUrl host`).toBe(simulatorNames[0])
      expect(url.port || '80').toBe(simEnv.get('SIMULATOR_PORT') ?? '8081')
      const [ownerId, ref] = c.type === 'ims' ? [c.clientId, c.clientSecret] : [c.appId, c.appSecret]
      const brokerSecret = brokerMounts.get(String(dict(ref, `${id} secret`).file))
      expect(brokerSecret, `${id} secret is a mounted file`).toBeDefined()
      expect(
        simMounts.get(`${dir}/${ownerId}`),
        `simulator mounts ${brokerSecret} as ${dir}/${ownerId}`,
      ).toBe(brokerSecret)
    }
  })
})

describe('docker/broker.config.example.json', () => {
  it('is a valid config for the real Adobe endpoints with restricted clients', () => {
    checkBrokerConfig(exampleConfig)
    for (const [id, c] of Object.entries(dict(exampleConfig.credentials, 'credentials'))) {
      expect(dict(c, id).baseUrl, `${id} uses the environment's Adobe endpoint`).toBeUndefined()
    }
    const restricted = Object.values(dict(exampleConfig.clients, 'clients')).filter(
      (c) => !strings(dict(c, 'client').credentials).includes('*'),
    )
    expect(restricted.length).toBeGreaterThanOrEqual(2)
    for (const ref of collectRefs(exampleConfig, '$', [], [])) {
      if (ref.kind === 'file') expect(isAbsolute(ref.value), ref.at).toBe(true)
      else expect(ref.value, ref.at).toMatch(/^[A-Z_][A-Z0-9_]*$/)
    }
  })
})

describe('demo secrets', () => {
  it('are clearly fake and appear nowhere but in their own files', () => {
    expect(demoSecretValues.length).toBeGreaterThan(0)
    const elsewhere = [
      read('docker-compose.yml'),
      read('Dockerfile'),
      read('docker', 'broker.config.json'),
      read('docker', 'broker.config.example.json'),
    ].join('\n')
    for (const value of demoSecretValues) {
      expect(value).toMatch(/^demo-only-not-a-secret-/)
      expect(elsewhere.includes(value), 'a demo secret copied into a config file').toBe(false)
    }
  })
})

describe('docker-compose.tls.yml (TLS override)', () => {
  const override = dict(parse(read('docker-compose.tls.yml'), { merge: true }), 'docker-compose.tls.yml')
  const overridden = dict(override.services, 'services')
  const tlsSecrets = dict(override.secrets, 'secrets')

  it('turns TLS on for every broker replica, from compose secrets, with schema variables only', () => {
    expect(Object.keys(overridden).sort()).toEqual([...brokerNames].sort())
    for (const n of brokerNames) {
      const s = dict(overridden[n], `service ${n}`)
      const env = environmentOf(s)
      for (const k of env.keys()) expect(ALLOWED_ENV, `${n} sets ${k}`).toContain(k)
      const mounted = strings(s.secrets)
      for (const name of ['TLS_CERT_FILE', 'TLS_KEY_FILE']) {
        const path = env.get(name)
        expect(path, `${n} ${name}`).toMatch(/^\/run\/secrets\//)
        const secret = path!.slice('/run/secrets/'.length)
        expect(mounted, `${n} mounts ${secret}`).toContain(secret)
        expect(Object.keys(tlsSecrets)).toContain(secret)
      }
      // The override adds no ports: publishing stays as the base file has it.
      expect(s.ports).toBeUndefined()
    }
  })

  it('reads certificate and key from docker/tls/, which git and the build context ignore', () => {
    for (const [name, raw] of Object.entries(tlsSecrets)) {
      const file = String(dict(raw, `secret ${name}`).file)
      expect(resolve(repoRoot, file).startsWith(fromRoot('docker', 'tls'))).toBe(true)
    }
    expect(read('.gitignore').split(/\r?\n/)).toContain('/docker/tls/')
    expect(read('.dockerignore').split(/\r?\n/)).toContain('docker')
  })

  it("keeps the image's HEALTHCHECK working with TLS on: it follows TLS_CERT_FILE", () => {
    const hc = finalOf('HEALTHCHECK').at(-1)?.args ?? ''
    expect(hc).toContain('TLS_CERT_FILE')
    expect(hc).toContain('node:https')
  })
})
