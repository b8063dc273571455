/** The result of reading one email address. */
export type EmailParse =
  | { readonly ok: true; readonly participant: string }
  | { readonly ok: false; readonly reason: string }

// Longer text cannot hold a valid address (254) with a sensible display
// name; refusing it first also bounds the work done on hostile input.
const MAX_ADDRESS_TEXT = 512
// Control characters (CR and LF above all) in a display name would inject
// headers into the mail a provider builds from it.
const CONTROL = /[\u0000-\u001f\u007f]/
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
  if (trimmed.length > MAX_ADDRESS_TEXT || CONTROL.test(text)) {
    return { ok: false, reason: 'is not an email address' }
  }
  const address = addressPart(trimmed)
  if (address === undefined) {
    return { ok: false, reason: 'is not an email address' }
  }

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

// `Display Name <local@domain>` (the name optionally quoted) gives the part
// in angle brackets; text without brackets is the address itself. Plain
// string scanning: linear in the input, whatever it holds.
function addressPart(text: string): string | undefined {
  if (!text.endsWith('>')) return text.includes('<') ? undefined : text
  const open = text.lastIndexOf('<')
  if (open < 0) return undefined
  const name = text.slice(0, open).trim()
  const address = text.slice(open + 1, -1)
  if (!isDisplayName(name) || /[<>\s]/.test(address)) return undefined
  return address
}

function isDisplayName(name: string): boolean {
  if (name.startsWith('"')) {
    return (
      name.length >= 2 && name.endsWith('"') && !name.slice(1, -1).includes('"')
    )
  }
  return !/[<>"]/.test(name)
}

function isValidLocal(local: string): boolean {
  return local.length <= 64 && LOCAL_PART.test(local)
}

function isValidDomain(domain: string): boolean {
  const labels = domain.split('.')
  if (domain.length > 253 || labels.length < 2) return false
  return labels.every((label) => DOMAIN_LABEL.test(label))
}
