// Static checks of the alert rules, their promtool unit tests and the Grafana dashboard. The rules'
// behaviour itself is tested by promtool (`promtool test rules deploy/prometheus/alerts.test.yml`,
// run by .ci/run); here: every rule is complete and has both a firing and a quiet test case.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

const read = (path: string) => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8')

interface Rule {
  alert: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}
interface RuleTests {
  rule_files: string[]
  tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] | null }[] }[]
}

const rules = (parse(read('deploy/prometheus/alerts.yml')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (g) => g.rules,
)
const ruleTests = parse(read('deploy/prometheus/alerts.test.yml')) as RuleTests

describe('deploy/prometheus/alerts.yml', () => {
  it('has the alerts the deployment kit promises', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual([
      'TokenBrokerCredentialFailing',
      'TokenBrokerFallbackSecret',
      'TokenBrokerNoReplicaReady',
      'TokenBrokerStoreDown',
      'TokenBrokerTokenExpiringSoon',
    ])
  })

  it.each(rules.map((r) => [r.alert, r] as const))(
    '%s has a duration, a severity and a summary',
    (_, rule) => {
      expect(rule.expr.trim()).not.toBe('')
      expect(rule.for).toMatch(/^\d+[smhd]$/)
      expect(['warning', 'critical']).toContain(rule.labels?.severity)
      expect(rule.annotations?.summary).toBeTruthy()
      expect(rule.annotations?.description).toBeTruthy()
    },
  )

  it('the fallback secret alert waits a day', () => {
    expect(rules.find((r) => r.alert === 'TokenBrokerFallbackSecret')?.for).toBe('1d')
  })

  it('alerts.test.yml tests these rules, each both firing and not firing', () => {
    expect(ruleTests.rule_files).toEqual(['alerts.yml'])
    const cases = ruleTests.tests.flatMap((t) => t.alert_rule_test ?? [])
    for (const { alert } of rules) {
      const own = cases.filter((c) => c.alertname === alert)
      expect(
        own.some((c) => (c.exp_alerts ?? []).length > 0),
        `${alert} fires in a test`,
      ).toBe(true)
      expect(
        own.some((c) => (c.exp_alerts ?? []).length === 0),
        `${alert} stays quiet in a test`,
      ).toBe(true)
    }
  })
})

interface Panel {
  id: number
  type: string
  title: string
  datasource?: { type: string; uid: string }
  targets?: { expr?: string; datasource?: { uid: string } }[]
}

describe('deploy/grafana/token-broker.json', () => {
  const dashboard = JSON.parse(read('deploy/grafana/token-broker.json')) as {
    uid: string
    panels: Panel[]
    templating: { list: { name: string; type: string; query: unknown }[] }
  }

  it('picks its Prometheus data source through a variable, so it imports anywhere', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template
    const variable = '${datasource}'
    const source = dashboard.templating.list.find((v) => v.name === 'datasource')
    expect(source).toMatchObject({ type: 'datasource', query: 'prometheus' })
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: variable })
      for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).toBe(variable)
    }
  })

  it('has unique panel ids, and every panel queries something', () => {
    const ids = dashboard.panels.map((p) => p.id)
    expect(new Set(ids).size).toBe(ids.length)
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0)
      for (const target of panel.targets ?? []) expect(target.expr?.trim(), panel.title).toBeTruthy()
    }
  })

  it('shows upstream latency as histogram quantiles and requests by client and code', () => {
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''))
    const quantiles = exprs.filter((e) =>
      /histogram_quantile\(0\.\d+, sum by \(le, type\) \(rate\(token_broker_upstream_request_duration_seconds_bucket/.test(
        e,
      ),
    )
    expect(quantiles.length).toBeGreaterThanOrEqual(3)
    expect(exprs.some((e) => /sum by \(client, code\) \(rate\(token_broker_requests_total/.test(e))).toBe(
      true,
    )
    expect(exprs.some((e) => /sum by \(credential, outcome\).*token_broker_mints_total/.test(e))).toBe(true)
  })
})
