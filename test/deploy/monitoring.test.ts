// deploy/monitoring against a real Tally on a real Redis: every metric the
// Grafana dashboard and the Prometheus rules read is one /metrics exports, the
// rules file has what Prometheus requires of it, and the metrics added for
// operators (lease lapses, scan-limit trips, next rotation, introspection
// latency by result) move when the thing they count happens.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseDuration } from '../../src/config.js';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { createKeyNames } from '../../src/store/redis/keys.js';
import { eventually } from '../support/eventually.js';
import { createGrpcTestClient, grpcStatusOf, type GrpcTestClient } from '../support/grpc-client.js';
import { writeCallersFile } from '../support/keyed-callers.js';
import { withNodeClient } from '../support/redis-node-client.js';
import { startRedis, type RedisServerHandle } from '../support/redis-server.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';
import { checkBrackets, metricNames } from './promql.js';

const MONITORING = join(import.meta.dirname, '..', '..', 'deploy', 'monitoring');
const MASTER_KEY = Buffer.alloc(32, 9).toString('base64');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = parse(readFileSync(join(MONITORING, 'tally-alerts.yaml'), 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
const dashboard = JSON.parse(readFileSync(join(MONITORING, 'tally-dashboard.json'), 'utf8')) as {
  panels: { title: string; type: string; targets?: { expr: string }[] }[];
  templating: { list: { name: string; type: string; query: unknown }[] };
};

function dashboardExpressions(): { where: string; expr: string }[] {
  const fromPanels = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: `panel "${panel.title}"`, expr: target.expr })));
  // A query variable's label_values(metric, label) reads the metric.
  const fromVariables = dashboard.templating.list
    .filter((variable) => variable.type === 'query')
    .map((variable) => {
      const query = typeof variable.query === 'string' ? variable.query : (variable.query as { query: string }).query;
      const metric = /^label_values\(\s*([^,]+),/.exec(query)?.[1];
      return { where: `variable $${variable.name}`, expr: metric ?? query };
    });
  return [...fromPanels, ...fromVariables];
}

const ruleExpressions = () => rules.groups.flatMap((group) => group.rules.map((rule) => ({ where: `rule ${rule.alert ?? rule.record}`, expr: rule.expr })));

/** The sample names /metrics can hold: each # TYPE's name, with a histogram's or summary's series. */
function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === 'histogram') ['_bucket', '_sum', '_count'].forEach((suffix) => names.add(`${name}${suffix}`));
    if (type === 'summary') ['_sum', '_count'].forEach((suffix) => names.add(`${name}${suffix}`));
  }
  return names;
}

function sampleValue(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('the Prometheus rules file', () => {
  it('has uniquely named groups of rules, each with what Prometheus requires', () => {
    expect(rules.groups.length).toBeGreaterThan(0);
    expect(new Set(rules.groups.map((group) => group.name)).size).toBe(rules.groups.length);
    const alerts = new Set<string>();
    for (const group of rules.groups) {
      expect(group.name, 'group name').toMatch(/\S/);
      expect(group.rules.length, group.name).toBeGreaterThan(0);
      for (const rule of group.rules) {
        const known = new Set(['alert', 'record', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations']);
        for (const field of Object.keys(rule)) expect(known, `${group.name}: ${field}`).toContain(field);
        expect((rule.alert === undefined) !== (rule.record === undefined), 'alert or record, not both').toBe(true);
        const name = rule.alert ?? rule.record!;
        expect(name).toMatch(rule.alert !== undefined ? /^[A-Za-z_][A-Za-z0-9_]*$/ : /^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
        expect(alerts.has(name), `${name} twice`).toBe(false);
        alerts.add(name);
        expect(typeof rule.expr).toBe('string');
        expect(() => checkBrackets(rule.expr)).not.toThrow();
        if (rule.for !== undefined) expect(rule.for, name).toMatch(/^(\d+(ms|s|m|h|d|w|y))+$/);
        for (const value of Object.values({ ...rule.labels, ...rule.annotations })) expect(typeof value).toBe('string');
        if (rule.alert !== undefined) {
          expect(['critical', 'warning', 'info']).toContain(rule.labels?.severity);
          expect(rule.annotations?.summary, name).toMatch(/\S/);
        }
      }
    }
  });

  it('reads every metric it names from an expression that parses', () => {
    for (const { where, expr } of [...ruleExpressions(), ...dashboardExpressions()]) {
      expect(() => checkBrackets(expr), where).not.toThrow();
      expect(metricNames(expr).length, `${where} reads no metric`).toBeGreaterThan(0);
    }
  });
});

describe('deploy/monitoring against a running Tally on Redis', () => {
  let redis: RedisServerHandle;
  let tally: TallyProcess;
  let client: GrpcTestClient;
  const callers = writeCallersFile([
    { name: 'ops', permissions: ['issue', 'introspect', 'revoke', 'keys'] },
    // A scraper as docs/operations.md sets one up: the inactive reasons are shown only to it.
    { name: 'prometheus', permissions: ['metrics'] },
  ]);
  const asOps = { metadata: { authorization: `Bearer ${callers.keys.ops}` } };
  const metrics = async () => (await fetch(`${tally.httpUrl}/metrics`, { headers: { authorization: `Bearer ${callers.keys.prometheus}` } })).text();

  beforeAll(async () => {
    redis = await startRedis();
    tally = await startTally({
      env: {
        TALLY_REDIS_URL: redis.url,
        TALLY_MASTER_KEY: MASTER_KEY,
        TALLY_CALLERS_FILE: callers.path,
        TALLY_LEASE_MS: '300',
        TALLY_KEY_ROTATION_INTERVAL: '1h',
        TALLY_SCAN_LIMIT_RATE: '1',
        TALLY_SCAN_LIMIT_BURST: '2',
      },
    });
    client = createGrpcTestClient(tally.grpcAddress);
    // Traffic, so that every labelled series has a sample too.
    const { token } = await client.unary(TokenService.method.issue, { subject: 'alice' }, asOps);
    await client.unary(TokenService.method.introspect, { token }, asOps);
    await client.unary(TokenService.method.revoke, { target: { case: 'subject', value: 'alice' } }, asOps);
    await client.unary(TokenService.method.introspect, { token }, asOps);
  }, 60_000);
  afterAll(async () => {
    client?.close();
    await tally?.stop();
    await redis?.stop();
  });

  it('exports every metric the dashboard and the alerting rules read', async () => {
    const exported = exportedNames(await metrics());
    const named = new Map<string, string>();
    for (const { where, expr } of [...dashboardExpressions(), ...ruleExpressions()]) for (const name of metricNames(expr)) named.set(name, where);
    expect(named.size).toBeGreaterThan(10);
    for (const [name, where] of named) expect(exported, `${name} (${where}) is not exported by /metrics`).toContain(name);
    // What the issue asks an operator to see.
    expect([...named.keys()]).toEqual(
      expect.arrayContaining([
        'tally_introspections_total',
        'tally_introspection_duration_seconds_bucket',
        'tally_call_duration_seconds_bucket',
        'tally_calls_total',
        'tally_store_errors_total',
        'tally_store_operation_duration_seconds_bucket',
        'tally_replica_lease_lapses_total',
        'tally_signing_key_age_seconds',
        'tally_signing_key_next_rotation_timestamp_seconds',
        'tally_scan_limit_refusals_total',
      ]),
    );
  });

  it('times introspections by result', async () => {
    const text = await metrics();
    expect(sampleValue(text, 'tally_introspection_duration_seconds_count', { result: 'active' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(text, 'tally_introspection_duration_seconds_count', { result: 'inactive' })).toBeGreaterThanOrEqual(1);
  });

  it('says when the scheduled rotation is due: the active key\'s creation plus the interval', async () => {
    const { keys } = await client.unary(TokenService.method.listKeys, {}, asOps);
    const newest = Math.max(...keys.filter((key) => key.state === 1).map((key) => Number(key.createdAt!.seconds) + key.createdAt!.nanos / 1e9));
    const due = sampleValue(await metrics(), 'tally_signing_key_next_rotation_timestamp_seconds', { algorithm: 'EdDSA' });
    expect(due).toBeDefined();
    expect(Math.abs(due! - (newest + parseDuration('1h') / 1000))).toBeLessThan(1);
  });

  it('counts the introspections the scan limit refuses, by caller', async () => {
    const unknown = `tly_${'A'.repeat(40)}`;
    await eventually(async () => {
      const status = await grpcStatusOf(client.unary(TokenService.method.introspect, { token: unknown }, asOps)).catch(() => ({ code: grpc.status.OK }));
      expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    }, 10_000, 1);
    expect(sampleValue(await metrics(), 'tally_scan_limit_refusals_total', { caller: 'ops' })).toBeGreaterThanOrEqual(1);
  });

  it('counts a lease that lapsed while the replica was paused', async () => {
    const leases = createKeyNames().leases;
    const before = sampleValue(await metrics(), 'tally_replica_lease_lapses_total') ?? 0;
    tally.signal('SIGSTOP');
    try {
      // Paused until Redis's clock has passed the end of every lease it holds.
      await eventually(async () => {
        const lapsed = await withNodeClient(redis.port, async (redisClient) => {
          const [seconds, micros] = await redisClient.time();
          const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
          const entries = Object.values(await redisClient.hgetall(leases));
          return entries.length > 0 && entries.every((entry) => Number(entry.slice(entry.lastIndexOf(':') + 1)) < now);
        });
        expect(lapsed).toBe(true);
      }, 10_000);
    } finally {
      tally.signal('SIGCONT');
    }
    await eventually(async () => {
      expect(sampleValue(await metrics(), 'tally_replica_lease_lapses_total')).toBeGreaterThan(before);
    }, 10_000);
  });
});
