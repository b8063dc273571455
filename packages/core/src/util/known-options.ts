/**
 * Checks that `options` is an object whose keys are all among `known`: a
 * misspelt option (baseURL for baseUrl) would otherwise leave its default
 * in force without a word, such as a provider's real API for a test
 * server. Throws TypeError for a value that is not an object, RangeError
 * naming the first unknown key (and the option it resembles, if any).
 */
export function checkKnownOptions(
  what: string,
  options: unknown,
  known: readonly string[],
): void {
  if (
    typeof options !== 'object' ||
    options === null ||
    Array.isArray(options)
  ) {
    throw new TypeError(`${what}: options must be an object`)
  }
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue
    const like = known.find((k) => k.toLowerCase() === name.toLowerCase())
    const hint = like === undefined ? '' : ` (did you mean ${like}?)`
    throw new RangeError(`${what}: ${name} is not an option${hint}`)
  }
}
