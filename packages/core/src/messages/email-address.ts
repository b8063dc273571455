/** The result of reading one email address. */
export type EmailParse =
  | { readonly ok: true; readonly participant: string }
  | { readonly ok: false; readonly reason: string }

// `Display Name <local@domain>`, the name optionally quoted.
const WITH_NAME = /^(?:"[^"]*"|[^<>"]*)\s*<([^<>\s]+)>$/
// RFC 5322 dot-atom local part: atext runs separated by single dots.
const LOCAL_PART =
  /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/
const DOMAIN_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

/**
 * Reads an email address, with or without a display name, into its
 * participant form: the bare address in lower case, with any `+tag`
 * dropped from the local part. Dots are kept: they are significant.
 */
export function parseEmail(text: string): EmailParse {
  const trimmed = text.trim()
  if (trimmed === '') return { ok: false, reason: 'must not be empty' }
  const address = WITH_NAME.exec(trimmed)?.[1] ?? trimmed

  const at = address.lastIndexOf('@')
  if (at <= 0 || address.length > 254) {
    return { ok: false, reason: 'is not an email address' }
  }
  const local = address.slice(0, at)
  const domain = address.slice(at + 1)
  if (!isValidLocal(local) || !isValidDomain(domain)) {
    return { ok: false, reason: 'is not an email address' }
  }

  const untagged = local.split('+')[0] ?? ''
  if (untagged === '') {
    return { ok: false, reason: 'has nothing before its +tag' }
  }
  return { ok: true, participant: `${untagged}@${domain}`.toLowerCase() }
}

function isValidLocal(local: string): boolean {
  return local.length <= 64 && LOCAL_PART.test(local)
}

function isValidDomain(domain: string): boolean {
  const labels = domain.split('.')
  if (domain.length > 253 || labels.length < 2) return false
  return labels.every((label) => DOMAIN_LABEL.test(label))
}
