import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { createHarness } from './support.js'

describe('reports for a provider id not stored yet', () => {
  it('keep one row per id and status however often they are redelivered', async () => {
    const h = await createHarness()
    try {
      const report = {
        family: 'email' as const,
        providerMessageId: 'not-yet',
        status: 'delivered' as const,
      }
      for (let i = 0; i < 5; i += 1) await h.parley.reportDelivery([report])
      await h.parley.reportDelivery([{ ...report, status: 'bounced' }])

      const rows = await sql<{
        n: number
      }>`select count(*) as n from pending_status_updates`.execute(h.db.kysely)
      expect(Number(rows.rows[0]?.n)).toBe(2)
    } finally {
      await h.close()
    }
  })
})
