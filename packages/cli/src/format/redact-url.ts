// Credentials a URL can carry: the userinfo password, query parameters
// named like a secret (`password=`, `sslpassword=`, `api_key=`, `token=`)
// and anything in its fragment.
const secretParameter = /pass|pwd|secret|token|key|auth|credential/i

const mask = '***'

/**
 * The URL with every credential it carries replaced by `***`: the
 * userinfo password and the value of each query parameter whose name looks
 * like a secret (case-insensitive). Text that is not a URL is returned as
 * is (a SQLite path carries no credential).
 */
export function redactUrl(text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return text
  }
  let masked = false
  if (url.password !== '') {
    url.password = mask
    masked = true
  }
  for (const name of new Set(url.searchParams.keys())) {
    if (!secretParameter.test(name)) continue
    url.searchParams.set(name, mask)
    masked = true
  }
  // No database or server reads a fragment; whatever it holds is masked.
  if (url.hash.length > 1) {
    url.hash = mask
    masked = true
  }
  // Unchanged text stays as written (`new URL` would add a slash).
  return masked
    ? url.toString().replaceAll(encodeURIComponent(mask), mask)
    : text
}

/**
 * `text` (such as an error message) with every credential of `url`
 * replaced by `***`, wherever it appears: as written in the URL and
 * decoded.
 */
export function redactCredentials(text: string, url: string): string {
  let redacted = text
  for (const secret of credentialsOf(url)) {
    redacted = redacted.split(secret).join(mask)
  }
  return redacted
}

function credentialsOf(text: string): string[] {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return []
  }
  const fragment = url.hash.slice(1)
  const secrets = [
    url.password,
    safeDecode(url.password),
    fragment,
    safeDecode(fragment),
  ]
  for (const [name, value] of url.searchParams) {
    if (secretParameter.test(name))
      secrets.push(value, encodeURIComponent(value))
  }
  // Longest first, so that a secret containing another is masked whole.
  return [...new Set(secrets)]
    .filter((secret) => secret !== '')
    .sort((a, b) => b.length - a.length)
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
