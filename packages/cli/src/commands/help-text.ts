/**
 * The text shown after a command's `--help`: an `Example:` heading and the
 * example, indented, each line of it starting two spaces in.
 */
export function example(text: string): string {
  return `\nExample:\n  ${text.replaceAll('\n', '\n  ')}\n`
}
