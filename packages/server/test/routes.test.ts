import { describe, expect, it } from 'vitest'
import { matchRoute, ROUTES } from '../src/http/routes.js'

function found(method: string, path: string) {
  const match = matchRoute(method, path)
  if (match.kind !== 'found') {
    throw new Error(`${method} ${path} did not match: ${JSON.stringify(match)}`)
  }
  return { name: match.route.name, params: match.params }
}

describe('matchRoute', () => {
  it.each([
    ['POST', '/api/messages/sms', 'send_sms'],
    ['POST', '/api/messages/email', 'send_email'],
    ['POST', '/api/webhooks/sms', 'webhook_sms'],
    ['POST', '/api/webhooks/email', 'webhook_email'],
    ['GET', '/api/conversations', 'list_conversations'],
    ['GET', '/api/conversations/1/messages', 'list_messages'],
    ['GET', '/api/messages/1', 'get_message'],
    ['GET', '/metrics', 'metrics'],
    ['GET', '/healthz', 'healthz'],
    ['GET', '/readyz', 'readyz'],
    ['GET', '/openapi.json', 'openapi'],
  ])('routes %s %s to %s', (method, path, name) => {
    expect(found(method, path).name).toBe(name)
  })

  it('serves HEAD with the GET route', () => {
    expect(found('HEAD', '/api/conversations').name).toBe('list_conversations')
    expect(found('HEAD', '/metrics').name).toBe('metrics')
  })

  it('passes path parameters, percent-decoded', () => {
    expect(found('GET', '/api/conversations/42/messages').params).toEqual({
      id: '42',
    })
    expect(found('GET', '/api/messages/%37').params).toEqual({ id: '7' })
    // Any segment matches; the handler decides that "abc" names no row.
    expect(found('GET', '/api/messages/abc').params).toEqual({ id: 'abc' })
  })

  it('ignores one trailing slash', () => {
    expect(found('GET', '/api/conversations/').name).toBe('list_conversations')
  })

  it('prefers a literal segment to a parameter', () => {
    expect(matchRoute('GET', '/api/messages/sms')).toEqual({
      kind: 'wrong_method',
      allow: ['POST'],
    })
    expect(matchRoute('GET', '/api/messages/email')).toEqual({
      kind: 'wrong_method',
      allow: ['POST'],
    })
  })

  it.each([
    ['DELETE', '/api/conversations', ['GET', 'HEAD']],
    ['POST', '/metrics', ['GET', 'HEAD']],
    ['POST', '/api/messages/7', ['GET', 'HEAD']],
    ['GET', '/api/webhooks/sms', ['POST']],
    ['PUT', '/api/messages/sms', ['POST']],
  ])('lists the allowed methods for %s %s', (method, path, allow) => {
    expect(matchRoute(method, path)).toEqual({ kind: 'wrong_method', allow })
  })

  it.each([
    '/',
    '/api',
    '/api/conversations/1',
    '/api/conversations//messages',
    '/api/conversations/1/messages/2',
    '//api/conversations',
    '/API/conversations',
    '/api/messages/%E0%A4%A',
  ])('matches nothing at %s', (path) => {
    expect(matchRoute('GET', path)).toEqual({ kind: 'none' })
  })

  it('has one route per method and path', () => {
    const keys = ROUTES.map(
      (route) => `${route.method} /${route.path.join('/')}`,
    )
    expect(new Set(keys).size).toBe(keys.length)
  })

  it('takes bodies on POST routes only', () => {
    for (const route of ROUTES) {
      if (route.method === 'GET')
        expect(route.bodies, route.name).toBeUndefined()
    }
  })
})
