/** A JSON document as the only thing `--json` prints: indented, one line break at the end. */
export function formatJson(document: unknown): string {
  return JSON.stringify(document, null, 2) + '\n'
}
