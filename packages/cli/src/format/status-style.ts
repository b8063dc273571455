import type { Colors } from '../output.js'

// Green: it reached the provider or came in; yellow: still on its way; red:
// it did not arrive. Anything else (a status a newer server adds) is plain.
const good = new Set(['sent', 'delivered', 'received'])
const pending = new Set(['queued', 'sending'])
const bad = new Set(['failed', 'undelivered', 'bounced'])

/**
 * A style that colours a message status by what it means for the message:
 * green when it went out or came in, yellow while it is on its way, red
 * when it did not arrive.
 */
export function statusStyle(colors: Colors): (status: string) => string {
  return (status) => {
    if (good.has(status)) return colors.green(status)
    if (pending.has(status)) return colors.yellow(status)
    if (bad.has(status)) return colors.red(status)
    return status
  }
}
