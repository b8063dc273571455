/**
 * Ctrl-C (SIGINT) or SIGTERM, caught for a command that runs until the
 * user stops it, so that it can finish cleanly (print a summary, restore
 * the terminal) instead of dying mid-line.
 */
export interface StopSignal {
  /** True once a signal arrived. */
  readonly stopped: boolean
  /** The signal that arrived, if one did. */
  readonly signal: NodeJS.Signals | undefined
  /** Waits `ms` milliseconds, or less when a signal arrives meanwhile. */
  sleep(ms: number): Promise<void>
  /** Stops catching the signals. */
  dispose(): void
}

/** Starts catching SIGINT and SIGTERM; call `dispose` when done. */
export function stopSignal(): StopSignal {
  let stopped = false
  let received: NodeJS.Signals | undefined
  const sleepers = new Set<() => void>()
  const onSignal = (signal: NodeJS.Signals) => {
    stopped = true
    received ??= signal
    for (const wake of sleepers) wake()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  return {
    get stopped() {
      return stopped
    },
    get signal() {
      return received
    },
    sleep: (ms) =>
      stopped ? Promise.resolve() : sleepUnlessWoken(ms, sleepers),
    dispose: () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    },
  }
}

function sleepUnlessWoken(
  ms: number,
  sleepers: Set<() => void>,
): Promise<void> {
  return new Promise((resolve) => {
    const wake = () => {
      clearTimeout(timer)
      sleepers.delete(wake)
      resolve()
    }
    // setTimeout fires at once for more than 2^31 - 1 ms.
    const timer = setTimeout(wake, Math.min(ms, 2_147_483_647))
    sleepers.add(wake)
  })
}
