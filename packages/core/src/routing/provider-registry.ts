import type { ChannelFamily } from '../messages/types.js'
import type { Provider } from '../providers/provider.js'

/**
 * The providers of each channel family, in priority order. Built once from
 * the configured list; a family with no provider has no route.
 */
export class ProviderRegistry {
  private readonly byFamily = new Map<ChannelFamily, Provider[]>()

  constructor(providers: readonly Provider[]) {
    const names = new Set<string>()
    for (const provider of providers) {
      if (names.has(provider.name)) {
        throw new RangeError(
          `providers: the name ${JSON.stringify(provider.name)} is used twice`,
        )
      }
      names.add(provider.name)
      const list = this.byFamily.get(provider.family) ?? []
      list.push(provider)
      this.byFamily.set(provider.family, list)
    }
  }

  /** The family's providers, first choice first (empty when none). */
  providersFor(family: ChannelFamily): readonly Provider[] {
    return this.byFamily.get(family) ?? []
  }

  /** True when at least one provider serves `family`. */
  hasRoute(family: ChannelFamily): boolean {
    return this.providersFor(family).length > 0
  }
}
