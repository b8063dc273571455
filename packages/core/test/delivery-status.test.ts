import { describe, expect, it } from 'vitest'
import {
  fromSendGridEvent,
  fromTwilioStatus,
  sendGridMessageId,
} from '@parley/core'

describe('provider status vocabularies', () => {
  it('maps Twilio MessageStatus values as docs/api.md says, in any case', () => {
    expect(fromTwilioStatus('sent')).toBe('sent')
    expect(fromTwilioStatus('Delivered')).toBe('delivered')
    expect(fromTwilioStatus('UNDELIVERED')).toBe('undelivered')
    expect(fromTwilioStatus('failed')).toBe('failed')
    expect(fromTwilioStatus('canceled')).toBe('failed')
    for (const quiet of [
      'accepted',
      'scheduled',
      'queued',
      'sending',
      'read',
      'receiving',
      'received',
    ]) {
      expect(fromTwilioStatus(quiet), quiet).toBeNull()
    }
    expect(fromTwilioStatus('exploded')).toBeUndefined()
  })

  it('maps SendGrid events as docs/api.md says, ignoring engagement events', () => {
    expect(fromSendGridEvent('delivered')).toBe('delivered')
    expect(fromSendGridEvent('bounce')).toBe('bounced')
    expect(fromSendGridEvent('blocked')).toBe('bounced')
    expect(fromSendGridEvent('dropped')).toBe('failed')
    for (const quiet of [
      'processed',
      'deferred',
      'open',
      'click',
      'spamreport',
      'unsubscribe',
      'group_unsubscribe',
      'group_resubscribe',
    ]) {
      expect(fromSendGridEvent(quiet), quiet).toBeNull()
    }
    expect(fromSendGridEvent('teleported')).toBeUndefined()
  })

  it('knows no status by the name of an inherited object property', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'valueOf']) {
      expect(fromTwilioStatus(name), name).toBeUndefined()
      expect(fromSendGridEvent(name), name).toBeUndefined()
    }
  })

  it('reads the X-Message-Id prefix of a SendGrid sg_message_id', () => {
    expect(sendGridMessageId('abc123.filter0001.16648.5515E0B88.0')).toBe(
      'abc123',
    )
    expect(sendGridMessageId('abc123')).toBe('abc123')
  })
})
