import { describe, expect, it } from 'vitest'

import { summarizeLatencies } from '../src/load/latency.js'
import { ProgressReporter } from '../src/load/progress.js'
import { RequestTally } from '../src/load/send-requests.js'
import { parseTraffic, TrafficPlan } from '../src/load/traffic.js'
import { errColors } from '../src/output.js'

describe('summarizeLatencies', () => {
  it('takes nearest-rank percentiles and the maximum', () => {
    const samples = Array.from({ length: 100 }, (_, index) => 100 - index)

    expect(summarizeLatencies(samples)).toEqual({
      p50: 50,
      p90: 90,
      p99: 99,
      max: 100,
    })
    expect(summarizeLatencies([4, 1, 3, 2])).toEqual({
      p50: 2,
      p90: 4,
      p99: 4,
      max: 4,
    })
    expect(summarizeLatencies([])).toBeNull()
  })
})

describe('parseTraffic', () => {
  it('reads kinds and shorthands, keeping repeats', () => {
    expect(parseTraffic('sms,sms,email')).toEqual(['sms', 'sms', 'email'])
    expect(parseTraffic('mix')).toEqual([
      'sms',
      'email',
      'inbound-sms',
      'inbound-email',
    ])
    expect(() => parseTraffic('sms,fax')).toThrow('unknown kind "fax"')
  })
})

describe('TrafficPlan', () => {
  it('takes the kinds in turn, each request from a sender of its own', () => {
    const plan = new TrafficPlan(parseTraffic('sms,inbound-email,mms'))

    const requests = Array.from({ length: 300 }, (_, index) =>
      plan.request(index),
    )
    const bodies = requests.map((request) => JSON.parse(request.body))

    expect(requests.slice(0, 3).map((request) => request.path)).toEqual([
      'api/messages/sms',
      'api/webhooks/email',
      'api/messages/sms',
    ])
    expect(bodies[2]).toMatchObject({
      type: 'mms',
      attachments: [expect.stringMatching(/^https:\/\/example\.com\//)],
    })
    expect(bodies[1].xillio_id).toBe(`load-${plan.runId}-1`)
    expect(new Set(bodies.map((body) => body.from)).size).toBe(300)
    for (const body of bodies) {
      expect(body.from).toMatch(/^(\+1\d{3}555\d{4}|load-.*@example\.com)$/)
    }
  })
})

describe('ProgressReporter', () => {
  function tallyOf(finished: number): RequestTally {
    const tally = new RequestTally()
    tally.finished = finished
    tally.accepted = finished
    return tally
  }

  it('redraws one line with a bar on a terminal', () => {
    let written = ''
    let now = 0
    const reporter = new ProgressReporter({
      write: (text) => void (written += text),
      terminal: true,
      colors: errColors({ out() {}, err() {} }),
      now: () => now,
    })

    reporter.begin()
    now = 1000
    reporter.requests(tallyOf(50), 100)
    reporter.finishRequests(tallyOf(100), 100)

    expect(written).toBe(
      '\r\u001b[2K' +
        '█'.repeat(15) +
        '░'.repeat(15) +
        '  50% requests 50/100, 50 accepted, 0 rejected, 50 req/s, 1.0 s' +
        '\r\u001b[2K' +
        '█'.repeat(30) +
        ' 100% requests 100/100, 100 accepted, 0 rejected, 100 req/s, 1.0 s\n',
    )
  })

  it('writes a plain line at most once a second otherwise', () => {
    const lines: string[] = []
    let now = 0
    const reporter = new ProgressReporter({
      write: (text) => void lines.push(text),
      terminal: false,
      colors: errColors({ out() {}, err() {} }),
      now: () => now,
    })

    reporter.begin()
    for (let done = 1; done <= 30; done += 1) {
      now = done * 100
      reporter.requests(tallyOf(done), 30)
    }
    reporter.finishRequests(tallyOf(30), 30)

    expect(lines).toEqual([
      'requests 1/30, 1 accepted, 0 rejected, 10 req/s, 0.1 s\n',
      'requests 11/30, 11 accepted, 0 rejected, 10 req/s, 1.1 s\n',
      'requests 21/30, 21 accepted, 0 rejected, 10 req/s, 2.1 s\n',
      'requests 30/30, 30 accepted, 0 rejected, 10 req/s, 3.0 s\n',
    ])
  })
})

describe('ProgressReporter on a narrow terminal', () => {
  const visible = (text: string) =>
    text.replace(/\r|\u001b\[[0-9;]*[mK]/g, '').replace(/\n$/, '')

  it('fits every redraw to the terminal width, shrinking the bar first', () => {
    for (const columns of [20, 40, 60, 72, 100]) {
      const writes: string[] = []
      let now = 0
      const reporter = new ProgressReporter({
        write: (text) => void writes.push(text),
        terminal: true,
        colors: errColors({ out() {}, err() {}, errIsTerminal: true }),
        now: () => now,
        columns: () => columns,
      })
      const tally = new RequestTally()
      reporter.begin()
      for (let done = 1; done <= 50; done += 1) {
        now = done * 1000
        tally.finished = done
        tally.accepted = done - 1
        tally.noAnswer = 1
        reporter.requests(tally, 99_999_999)
      }
      reporter.finishRequests(tally, 99_999_999)

      for (const text of writes) {
        expect(visible(text).length, `${columns}: ${text}`).toBeLessThan(
          columns,
        )
      }
    }
  })

  it('counts unanswered requests apart from rejected ones', () => {
    const lines: string[] = []
    const reporter = new ProgressReporter({
      write: (text) => void lines.push(text),
      terminal: false,
      colors: errColors({ out() {}, err() {} }),
      now: () => 1000,
    })
    const tally = new RequestTally()
    tally.finished = 10
    tally.accepted = 5
    tally.rejectedByStatus.set(400, 2)
    tally.noAnswer = 3

    reporter.finishRequests(tally, 10)

    expect(lines[0]).toContain('5 accepted, 2 rejected, 3 no answer,')
  })
})
