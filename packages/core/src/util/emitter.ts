/**
 * A small typed event emitter. A listener that throws is reported to
 * `onListenerError` and never breaks the code that emitted the event.
 */
export class TypedEmitter<Events extends object> {
  private readonly listeners = new Map<
    keyof Events,
    Array<(payload: never) => void>
  >()

  constructor(private readonly onListenerError: (error: unknown) => void) {}

  /** Calls `listener` for every `event`; returns a function that stops it. */
  on<K extends keyof Events>(
    event: K,
    listener: (payload: Events[K]) => void,
  ): () => void {
    const list = this.listeners.get(event) ?? []
    list.push(listener as (payload: never) => void)
    this.listeners.set(event, list)
    return () => {
      const current = this.listeners.get(event) ?? []
      this.listeners.set(
        event,
        current.filter((item) => item !== listener),
      )
    }
  }

  /** Delivers `payload` to every listener of `event`. */
  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        ;(listener as (payload: Events[K]) => void)(payload)
      } catch (error) {
        this.onListenerError(error)
      }
    }
  }
}
