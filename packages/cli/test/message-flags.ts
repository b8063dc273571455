/**
 * Flags that the send and receive tests give the CLI over and over. The
 * expected request bodies still spell the values out, so that a test reads
 * as what goes in and what must come out.
 */

/** `--from` and `--to`, from one test phone number to another. */
export const phones = ['--from', '+15550001111', '--to', '+15550002222']

/** Two media URLs, as the MMS tests attach them. */
export const twoMedia = [
  'https://example.com/a.png',
  'https://example.com/b.png',
] as const

/** One `--attach` flag for each of `urls`, in their order. */
export function attachFlags(urls: readonly string[]): string[] {
  return urls.flatMap((url) => ['--attach', url])
}
