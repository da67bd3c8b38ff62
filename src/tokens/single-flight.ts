/**
 * Concurrent callers for one key share one run: the promise is cached while it is pending and
 * evicted the moment it settles, so the next caller after that starts afresh.
 */
export function createSingleFlight<T>() {
  const pending = new Map<string, Promise<T>>()
  return {
    run(key: string, work: () => Promise<T>): Promise<T> {
      const running = pending.get(key)
      if (running) return running
      const started = work().finally(() => pending.delete(key))
      pending.set(key, started)
      return started
    },
    has: (key: string): boolean => pending.has(key),
    settled: (): Promise<unknown> => Promise.allSettled(pending.values()),
  }
}
