import {
  type FetchFunction,
  type LookupAddress,
  publicAddressLookup,
} from '@parley/core'
import { Agent, fetch as undiciFetch } from 'undici'

/** Options of {@link attachmentFetch}. */
export interface AttachmentFetchOptions {
  /** API_ATTACHMENT_ALLOW_PRIVATE: then no address is refused. */
  readonly allowPrivate: boolean
  /** Resolves a host to connect to it. @default dns.lookup, all addresses */
  readonly resolve?: (hostname: string) => Promise<readonly LookupAddress[]>
}

/**
 * The fetch the SendGrid adapter fetches attachments with: its
 * connections go only to addresses checked public when connecting
 * (`publicAddressLookup`), so a host name whose DNS answers change after
 * the adapter's own check (DNS rebinding) cannot reach a private address.
 * Undefined when private hosts are allowed: the adapter's default fetch
 * serves then. Connections are kept alive for a few seconds at most.
 */
export function attachmentFetch(
  options: AttachmentFetchOptions,
): FetchFunction | undefined {
  if (options.allowPrivate) return undefined
  const dispatcher = new Agent({
    connect: { lookup: publicAddressLookup(options.resolve) },
    keepAliveTimeout: 4000,
  })
  return (input, init) =>
    undiciFetch(input as string, {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher,
    }) as unknown as Promise<Response>
}
