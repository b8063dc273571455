import { describe, expect, it } from 'vitest'
import { conversationIdentity } from '../src/messages/conversation-key.js'

describe('conversationIdentity', () => {
  it('builds <family>:<a><-><b> with the participants sorted', () => {
    expect(conversationIdentity('sms', '+18045551234', '+12025550100')).toEqual(
      {
        key: 'sms:+12025550100<->+18045551234',
        family: 'sms',
        participantA: '+12025550100',
        participantB: '+18045551234',
      },
    )
  })

  it('gives the same key whichever way the message went', () => {
    const there = conversationIdentity('email', 'b@example.com', 'a@x.org')
    const back = conversationIdentity('email', 'a@x.org', 'b@example.com')

    expect(there).toEqual(back)
    expect(there.key).toBe('email:a@x.org<->b@example.com')
  })

  it('keeps families apart for the same participants', () => {
    const sms = conversationIdentity('sms', '12345', '+18045551234')
    const email = conversationIdentity('email', '12345', '+18045551234')

    expect(sms.key).not.toBe(email.key)
    expect(sms.key).toBe('sms:+18045551234<->12345')
  })

  it('handles a conversation with oneself', () => {
    expect(conversationIdentity('sms', '555', '555').key).toBe('sms:555<->555')
  })
})
