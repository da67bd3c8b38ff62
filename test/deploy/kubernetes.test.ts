// Static checks of the kustomize base in deploy/kubernetes: every manifest is parsed (as YAML 1.1,
// as Kubernetes reads it) and what keeps the broker safe and reachable is checked, down to the
// secret files the ConfigMap's broker.config.json references. The config itself is loaded by the
// real app, so a file the broker would refuse fails here.

import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { buildBroker } from '../helpers/broker.js'

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form; each check narrows what it reads
type Manifest = any

const dir = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url))
const read = (file: string) => readFileSync(join(dir, file), 'utf8')

function documents(file: string): Manifest[] {
  return parseAllDocuments(read(file), { version: '1.1' }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`)
    return doc.toJS()
  })
}

const kustomization = documents('kustomization.yaml')[0] as { resources: string[] }
const manifests: Manifest[] = kustomization.resources.flatMap(documents)
const secretExamples: Manifest[] = documents('secret.example.yaml')

function one(kind: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind} in the base, found ${found.length}`)
  return found[0]
}

const deployment = one('Deployment')
const pod = deployment.spec.template.spec
const podLabels: Record<string, string> = deployment.spec.template.metadata.labels
const container = pod.containers[0]
const port = (name: string | number): number =>
  typeof name === 'number' ? name : container.ports.find((p: Manifest) => p.name === name)?.containerPort

const selects = (selector: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => podLabels[k] === v)

/** cpu in millicores, memory in bytes. */
function quantity(resource: 'cpu' | 'memory', value: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|K|M|G)?$/.exec(String(value))
  if (!m) throw new Error(`unreadable quantity ${value}`)
  const units: Record<string, number> = {
    m: 1,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    K: 1e3,
    M: 1e6,
    G: 1e9,
  }
  const whole = resource === 'cpu' ? 1000 : 1
  return Number(m[1]) * (m[2] ? units[m[2]]! : whole)
}

function envValue(name: string): Manifest {
  return container.env.find((e: Manifest) => e.name === name)
}

function exampleSecret(name: string): Record<string, string> | undefined {
  const secret = secretExamples.find((s) => s.metadata.name === name)
  return secret && { ...secret.stringData, ...secret.data }
}

describe('kustomization', () => {
  it('lists every manifest of the folder but the Secret example, whose placeholders must never be applied', () => {
    const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))
    expect([...kustomization.resources].sort()).toEqual(
      files.filter((f) => f !== 'kustomization.yaml' && f !== 'secret.example.yaml').sort(),
    )
    expect(manifests.some((m) => m.kind === 'Secret')).toBe(false)
  })

  it('has a Deployment, a Service, a PodDisruptionBudget, a NetworkPolicy and a ConfigMap', () => {
    for (const kind of ['Deployment', 'Service', 'PodDisruptionBudget', 'NetworkPolicy', 'ConfigMap'])
      one(kind)
  })
})

describe('Deployment', () => {
  it('runs two replicas, selected by the pod labels, rolling without losing capacity', () => {
    expect(deployment.spec.replicas).toBe(2)
    expect(selects(deployment.spec.selector.matchLabels)).toBe(true)
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0)
    expect(pod.containers).toHaveLength(1)
  })

  it('runs as the image user, never root, with no way to gain privilege', () => {
    // The Dockerfile's USER is `node`, uid 1000 in the official node images.
    expect(readFileSync(fileURLToPath(new URL('../../Dockerfile', import.meta.url)), 'utf8')).toMatch(
      /^USER node$/m,
    )
    expect(pod.securityContext.runAsNonRoot).toBe(true)
    expect(pod.securityContext.runAsUser).toBe(1000)
    expect(pod.securityContext.fsGroup).toBe(1000)
    expect(pod.securityContext.seccompProfile.type).toBe('RuntimeDefault')
    expect(pod.automountServiceAccountToken).toBe(false)
    const sc = container.securityContext
    expect(sc.runAsNonRoot).toBe(true)
    expect(sc.readOnlyRootFilesystem).toBe(true)
    expect(sc.allowPrivilegeEscalation).toBe(false)
    expect(sc.privileged ?? false).toBe(false)
    expect(sc.capabilities.drop).toEqual(['ALL'])
    expect(sc.capabilities.add ?? []).toEqual([])
  })

  it('has resource requests and limits, requests within limits', () => {
    const { requests, limits } = container.resources
    for (const resource of ['cpu', 'memory'] as const) {
      expect(requests[resource], `requests.${resource}`).toBeDefined()
      expect(limits[resource], `limits.${resource}`).toBeDefined()
      expect(quantity(resource, requests[resource])).toBeLessThanOrEqual(quantity(resource, limits[resource]))
    }
    // The broker holds about 100 MB under load and 123 MB at its start-up peak.
    expect(quantity('memory', limits.memory)).toBeGreaterThanOrEqual(quantity('memory', '192Mi'))
  })

  it('listens on 0.0.0.0:8080 and probes /healthz (liveness, startup) and /readyz (readiness) there', () => {
    expect(envValue('HOST')?.value).toBe('0.0.0.0')
    expect(envValue('PORT')?.value).toBe('8080')
    expect(port('http')).toBe(8080)
    const probes = {
      livenessProbe: '/healthz',
      startupProbe: '/healthz',
      readinessProbe: '/readyz',
    } as const
    for (const [probe, path] of Object.entries(probes)) {
      expect(container[probe]?.httpGet?.path, probe).toBe(path)
      expect(port(container[probe].httpGet.port), probe).toBe(8080)
      expect(container[probe].httpGet.scheme ?? 'HTTP', probe).toBe('HTTP')
    }
  })

  it('leaves time for the preStop pause and the 10 s shutdown, and no more than needed', () => {
    const command: string[] = container.lifecycle?.preStop?.exec?.command ?? ['sleep', '0']
    expect(command[0]).toBe('sleep')
    const pause = Number(command[1])
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(pause + 10)
    expect(pod.terminationGracePeriodSeconds).toBeLessThanOrEqual(30)
  })

  it('reads REDIS_URL and TOKEN_ENCRYPTION_KEY from a Secret the example describes', () => {
    for (const name of ['REDIS_URL', 'TOKEN_ENCRYPTION_KEY']) {
      const ref = envValue(name)?.valueFrom?.secretKeyRef
      expect(ref, name).toBeDefined()
      expect(exampleSecret(ref.name)?.[ref.key], `${ref.name}/${ref.key}`).toBeDefined()
    }
    // No secret value written into the manifest itself.
    for (const e of container.env) expect(e.value ?? '', e.name).not.toMatch(/REPLACE|redis:\/\//)
  })

  it('mounts the config and the secrets as whole read-only volumes (no subPath: updates reach the pod)', () => {
    for (const mount of container.volumeMounts) {
      expect(mount.readOnly, mount.name).toBe(true)
      expect(mount.subPath, mount.name).toBeUndefined()
      expect(mount.subPathExpr, mount.name).toBeUndefined()
    }
    const configMount = container.volumeMounts.find(
      (m: Manifest) => m.mountPath === dirname(envValue('BROKER_CONFIG').value),
    )
    const volume = pod.volumes.find((v: Manifest) => v.name === configMount?.name)
    expect(volume?.configMap?.name).toBe(one('ConfigMap').metadata.name)
    expect(one('ConfigMap').data[basename(envValue('BROKER_CONFIG').value)]).toBeDefined()
  })
})

describe('Service, PodDisruptionBudget, NetworkPolicy', () => {
  it('the Service selects the pods and reaches the container port', () => {
    const service = one('Service')
    expect(selects(service.spec.selector)).toBe(true)
    expect(service.spec.ports).toHaveLength(1)
    expect(port(service.spec.ports[0].targetPort)).toBe(8080)
  })

  it('the PodDisruptionBudget keeps one replica up and still lets a drain proceed', () => {
    const pdb = one('PodDisruptionBudget')
    expect(pdb.apiVersion).toBe('policy/v1')
    expect(selects(pdb.spec.selector.matchLabels)).toBe(true)
    expect(pdb.spec.minAvailable).toBeGreaterThanOrEqual(1)
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas)
  })

  it('the NetworkPolicy admits only labelled pods, on the broker port only', () => {
    const policy = one('NetworkPolicy')
    expect(selects(policy.spec.podSelector.matchLabels)).toBe(true)
    expect(policy.spec.policyTypes).toContain('Ingress')
    const rules: Manifest[] = policy.spec.ingress
    expect(rules.length).toBeGreaterThan(0)
    for (const rule of rules) {
      expect(rule.ports.map((p: Manifest) => port(p.port))).toEqual([8080])
      expect(rule.from.length).toBeGreaterThan(0)
      for (const peer of rule.from) {
        expect(peer.ipBlock).toBeUndefined()
        expect(Object.keys(peer.podSelector?.matchLabels ?? {}).length).toBeGreaterThan(0)
      }
    }
    const peers = rules.flatMap((r) => r.from)
    expect(peers.some((p) => p.podSelector.matchLabels['token-broker/client'] === 'true')).toBe(true)
    expect(peers.some((p) => p.podSelector.matchLabels['app.kubernetes.io/name'] === 'prometheus')).toBe(true)
  })
})

describe('ConfigMap and Secrets', () => {
  const configPath = envValue('BROKER_CONFIG').value as string
  const configText: string = one('ConfigMap').data[basename(configPath)]
  const config = JSON.parse(configText) as Record<string, unknown>

  /** Every secret reference ({"file"} or {"env"}) in the file, arrays of references included. */
  function references(value: unknown): Record<string, string>[] {
    if (Array.isArray(value)) return value.flatMap(references)
    if (typeof value !== 'object' || value === null) return []
    const entries = Object.entries(value)
    if (entries.length === 1 && (entries[0]![0] === 'file' || entries[0]![0] === 'env')) {
      return [value as Record<string, string>]
    }
    return entries.flatMap(([, v]) => references(v))
  }

  it('references every secret as a file under a mounted Secret volume, with the key that Secret has', () => {
    const refs = references(config)
    // Two Adobe secrets and two client keys in the example file.
    expect(refs.length).toBeGreaterThanOrEqual(4)
    for (const ref of refs) {
      expect(ref.file, JSON.stringify(ref)).toBeDefined()
      const path = ref.file!
      const mount = container.volumeMounts.find((m: Manifest) => posix.dirname(path) === m.mountPath)
      expect(mount, `${path} is under a mount`).toBeDefined()
      const volume = pod.volumes.find((v: Manifest) => v.name === mount.name)
      expect(volume?.secret, `${path} is on a Secret volume`).toBeDefined()
      const fileName = posix.basename(path)
      const items: { key: string; path: string }[] | undefined = volume.secret.items
      const key = items ? items.find((i) => i.path === fileName)?.key : fileName
      expect(key, `${path} is a projected key`).toBeDefined()
      expect(
        exampleSecret(volume.secret.secretName)?.[key!],
        `${volume.secret.secretName}/${key}`,
      ).toBeDefined()
    }
  })

  it('the Secret example is named as one and holds only placeholders', () => {
    expect(read('secret.example.yaml')).toMatch(/^# EXAMPLE ONLY/)
    expect(secretExamples.length).toBeGreaterThan(0)
    for (const secret of secretExamples) {
      expect(secret.kind).toBe('Secret')
      const values = Object.values({ ...secret.stringData, ...secret.data }) as string[]
      expect(values.length).toBeGreaterThan(0)
      for (const value of values) expect(value).toMatch(/REPLACE/)
    }
  })

  it('the broker loads the file: its credentials and clients work once the secret files exist', async () => {
    const secrets = await mkdtemp(join(tmpdir(), 'token-broker-k8s-'))
    onTestFinished(() => rm(secrets, { recursive: true, force: true }))
    // The same file, each /run/secrets/... path moved under a temporary folder holding a placeholder.
    let text = configText
    for (const { file } of references(config)) {
      const local = join(secrets, file!.replaceAll('/', '_'))
      await writeFile(local, `placeholder-${posix.basename(file!)}\n`)
      text = text.replaceAll(JSON.stringify(file), JSON.stringify(local))
    }
    const broker = await buildBroker({
      simUrl: 'http://127.0.0.1:9',
      document: JSON.parse(text),
      warm: false,
    })
    onTestFinished(() => broker.close())

    const ready = await broker.inject({ url: '/readyz' })
    const credentialIds = Object.keys(config.credentials as object).sort()
    expect(Object.keys(ready.json().credentials).sort()).toEqual(credentialIds)
    const listed = await broker.inject({
      url: '/v1/credentials',
      headers: { authorization: 'Bearer placeholder-ops-tools' },
    })
    expect(listed.statusCode).toBe(200)
    expect(
      listed
        .json()
        .credentials.map((c: { id: string }) => c.id)
        .sort(),
    ).toEqual(credentialIds)
  })
})
