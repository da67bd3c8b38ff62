import type { Cluster, Redis } from 'ioredis'
import { describe, expect, it, onTestFinished } from 'vitest'
import { credentialKey } from '../../src/store/redis.js'
import { EQP_APP_ID, IMS_CLIENT_ID } from '../helpers/broker.js'
import { askToken, refresh, TEST_ENCRYPTION_KEY, tokenOf, useFleet } from '../helpers/fleet.js'
import { eventually } from '../store/contract.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface Topology {
  /** The environment naming the topology (REDIS_SENTINELS, REDIS_CLUSTER_NODES, ...). */
  env(): Record<string, string>
  /** A plain client of the topology, for reading what the fleet stored; the caller quits it. */
  client(): Redis | Cluster
  /**
   * Kills (SIGKILL) the master holding the credential's keys under `prefix`; resolves once it is
   * dead, with a wait for a replica to take over.
   */
  killMaster(prefix: string, id: string): Promise<{ takenOver(): Promise<void> }>
}

/**
 * Three replicas of the real app on one topology: one mint per credential, propagation, restart
 * without a mint, and a master killed mid-refresh (docs/fleet.md: Failover).
 */
export function fleetSuite(name: string, topology: () => Topology): void {
  describe(`a fleet of three replicas on ${name}`, () => {
    const fleet = useFleet({
      env: () => ({ ...topology().env(), TOKEN_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY }),
    })

    it('mints once per credential on a cold start, spreads a forced token at once, and a restart mints nothing', async () => {
      const apps = await fleet.start()
      expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(1)
      expect(fleet.sim.mints(EQP_APP_ID)).toBe(1)
      const old = await tokenOf(apps[1]!)
      const res = await refresh(apps[0]!, old)
      const forced = res.json().access_token as string
      await eventually(async () => {
        expect(await tokenOf(apps[1]!)).toBe(forced)
        expect(await tokenOf(apps[2]!)).toBe(forced)
      }, 500)
      expect(await tokenOf(await fleet.restart(2))).toBe(forced)
      expect(fleet.sim.mints()).toBe(3)
    })

    it('survives its master killed mid-refresh: no failed caller request, readiness shows the store down then ok, what was minted meanwhile is written back, then one mint per cycle again', async () => {
      // 40 s tokens refreshed when 90 % of their life is left: a cycle about every 4 s, with time
      // to spare for the failover. Each mint takes 300 ms.
      fleet.sim.behave(IMS_CLIENT_ID, { expiresIn: 40, latencyMs: 300 })
      const apps = await fleet.start({ REFRESH_MARGIN: '0.9', UPSTREAM_TIMEOUT_MS: '1000' })
      const failures: string[] = []
      // Each replica's store state as /readyz shows it from the kill on, repeats dropped.
      const states: string[][] = apps.map(() => [])
      let killed = false
      let calling = true
      const callers = (async () => {
        while (calling) {
          for (const [i, app] of apps.entries()) {
            const res = await askToken(app)
            if (res.statusCode !== 200) failures.push(`${res.statusCode} ${res.body}`)
            const ready = await app.inject({ url: '/readyz' })
            if (ready.statusCode !== 200) failures.push(`readyz ${ready.statusCode}`)
            const state = ready.json().store.state as string
            const seen = states[i] ?? []
            if (killed && seen.at(-1) !== state) seen.push(state)
          }
          // Often enough to catch a failed request, light enough not to starve the other test files.
          await sleep(100)
        }
      })()
      const admin = topology().client()
      // Its reconnects to the dead master are expected (ioredis prints unhandled error events).
      admin.on('error', () => {})
      onTestFinished(async () => {
        await admin.quit()
      })
      const tokenKey = credentialKey(fleet.prefix, 'token', 'adobe-ims')
      try {
        // From the next mint on, tokens last 10 minutes: no refresh comes due before the test has
        // read what the failover left in Redis (a refresh could otherwise replace it first).
        fleet.sim.behave(IMS_CLIENT_ID, { expiresIn: 600 })
        // Mid-refresh: the next background mint has reached upstream and holds the fleet lock.
        const before = fleet.sim.mints(IMS_CLIENT_ID)
        await eventually(() => expect(fleet.sim.mints(IMS_CLIENT_ID)).toBeGreaterThan(before), 6000)
        const killedAt = Date.now()
        const failover = await topology().killMaster(fleet.prefix, 'adobe-ims')
        killed = true
        // A caller reports the token rejected while the master is dead: a token is minted without
        // the fleet lock, which the store cannot take (or the refresh under way mints it).
        const forced = await refresh(apps[0]!, await tokenOf(apps[0]!))
        expect(forced.statusCode, forced.body).toBe(200)
        await failover.takenOver()
        await eventually(async () => {
          for (const app of apps) {
            const ready = await app.inject({ url: '/readyz' })
            expect(ready.json().store.state).toBe('ok')
          }
        }, 15_000)
        const mintsWhenBack = fleet.sim.mints(IMS_CLIENT_ID)
        // The store came back by itself and the replicas wrote back what they minted meanwhile: the
        // token they all serve now is in Redis, and it was minted after the kill, before the store
        // was back (no mint since).
        await eventually(async () => {
          const tokens = await Promise.all(apps.map((app) => tokenOf(app)))
          expect(new Set(tokens).size).toBe(1)
          const held = apps[0]!.tokens.peek('adobe-ims')
          expect(held?.accessToken).toBe(tokens[0])
          expect(held?.mintedAt).toBeGreaterThan(killedAt)
          expect(await admin.hget(tokenKey, 'm')).toBe(String(held?.mintedAt))
        }, 5000)
        expect(fleet.sim.mints(IMS_CLIENT_ID)).toBe(mintsWhenBack)

        // Back to 40 s tokens, and a cycle begins with a forced refresh. A lock taken on the old
        // master may have been copied to the new one: its holder renews and releases it, or it ends
        // with its lease. Then count mints against the distinct tokens served over 3 cycles.
        fleet.sim.behave(IMS_CLIENT_ID, { expiresIn: 40 })
        await sleep(Math.max(0, killedAt + 6_000 - Date.now()))
        const restart = await refresh(apps[1]!, await tokenOf(apps[1]!))
        expect(restart.statusCode, restart.body).toBe(200)
        await eventually(async () => {
          const tokens = await Promise.all(apps.map((app) => tokenOf(app)))
          expect(new Set(tokens).size).toBe(1)
        }, 6000)
        const start = fleet.sim.mints(IMS_CLIENT_ID)
        const served = new Set<string>()
        const until = Date.now() + 12_000
        while (Date.now() < until) {
          for (const app of apps) served.add(await tokenOf(app))
          await sleep(50)
        }
        const mints = fleet.sim.mints(IMS_CLIENT_ID) - start
        const cycles = served.size - 1 // the first was minted before the window
        expect(cycles).toBeGreaterThanOrEqual(2)
        // One mint per cycle (the last may still be on its way to the callers).
        expect(mints).toBeGreaterThanOrEqual(cycles)
        expect(mints).toBeLessThanOrEqual(cycles + 1)
      } finally {
        calling = false
        await callers
      }
      expect(failures).toEqual([])
      // Readiness showed the store down during the failover (on the replica whose commands met the
      // dead master at least), then ok for good: every replica's states from the kill on, a first
      // 'ok' (not yet down) aside.
      const fromDown = (seen: string[] = []) => (seen[0] === 'ok' ? seen.slice(1) : seen)
      expect(fromDown(states[0])).toEqual(['down', 'ok'])
      for (const seen of states) expect([[], ['down', 'ok']]).toContainEqual(fromDown(seen))
    }, 60_000)
  })
}
