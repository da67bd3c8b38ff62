/** What the simulator saw of one peer: the client behind a connection, as SimulatorOptions.peer names it. */
export interface PeerStats {
  /** Token requests received from it (every outcome). */
  requests: number
  /** The most of its token requests answered at once since start (or reset). */
  maxInFlight: number
}

interface Live extends PeerStats {
  inFlight: number
}

/**
 * Token requests per peer and the peak of those in flight at once, so a bench can check a limit
 * each client promises to keep (several broker replicas behind one upstream, say).
 */
export function createPeerCounts() {
  const peers = new Map<string, Live>()
  return {
    started(peer: string): void {
      let p = peers.get(peer)
      if (!p) {
        p = { requests: 0, inFlight: 0, maxInFlight: 0 }
        peers.set(peer, p)
      }
      p.requests++
      p.inFlight++
      p.maxInFlight = Math.max(p.maxInFlight, p.inFlight)
    },
    ended(peer: string): void {
      const p = peers.get(peer)
      if (p) p.inFlight--
    },
    maxInFlight: (peer: string): number => peers.get(peer)?.maxInFlight ?? 0,
    /** Counts start again; a peak starts from what is in flight now, as the total's does. */
    reset(): void {
      for (const [peer, p] of peers) {
        if (p.inFlight === 0) peers.delete(peer)
        else Object.assign(p, { requests: 0, maxInFlight: p.inFlight })
      }
    },
    snapshot(): Record<string, PeerStats> {
      return Object.fromEntries(
        [...peers].map(([peer, p]) => [peer, { requests: p.requests, maxInFlight: p.maxInFlight }]),
      )
    },
  }
}
