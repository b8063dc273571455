import { displayWidth } from './display-width.js'
import { toPrintable } from './printable.js'

/** One line of a key-value list: a label and its value. */
export interface KeyValue {
  label: string
  value: string
  /** Styles the value after it is made printable, such as a colour. */
  style?: (text: string) => string
}

/**
 * Lays out labels and values as two aligned columns, indented by two
 * spaces, values made printable (see `toPrintable`).
 *
 * @example
 * formatKeyValues([{ label: 'status', value: 'sent' }, { label: 'attempts', value: '1' }])
 * // '  status    sent\n  attempts  1'
 */
export function formatKeyValues(
  entries: readonly KeyValue[],
  labelStyle: (text: string) => string = (text) => text,
): string {
  const width = Math.max(0, ...entries.map(({ label }) => displayWidth(label)))
  return entries
    .map(({ label, value, style }) => {
      const fill = ' '.repeat(width - displayWidth(label))
      const text = toPrintable(value)
      const shown = style === undefined || text === '' ? text : style(text)
      return `  ${labelStyle(label)}${fill}  ${shown}`.trimEnd()
    })
    .join('\n')
}
