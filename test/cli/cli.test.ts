// The `tally` command, run as a child process against a real Tally serving
// TLS with callers the command itself made: every call an operator makes,
// each answer checked through an independent grpc-js client, and every
// failure an operator meets ending in one line and a non-zero exit.

import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/gen/tally/v1/token_service_pb.js';
import { createTestCa, type IssuedCertificate, type TestCa } from '../support/certificates.js';
import { eventually } from '../support/eventually.js';
import { createGrpcTestClient, grpcStatusOf, type GrpcTestClient } from '../support/grpc-client.js';
import { jsonOf, runCli, type CliRun } from '../support/tally-cli.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const SPIFFE_ID = 'spiffe://tally.test/ns/ops/sa/console';

function expectOneLineFailure(run: CliRun, code: number, message: RegExp): void {
  expect(run.code, run.stderr).toBe(code);
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(/^tally: [^\n]+\n$/);
  expect(run.stderr).toMatch(message);
  expect(run.stderr).not.toMatch(/\bat .*:\d+:\d+/);
}

describe('tally, the operator command, against a real Tally over TLS', () => {
  const directory = mkdtempSync(join(tmpdir(), 'tally-cli-'));
  const callersFile = join(directory, 'callers.json');
  let ca: TestCa;
  let operatorCertificate: IssuedCertificate;
  let tally: TallyProcess;
  let operatorKey: string;
  let independent: GrpcTestClient;
  const connection = () => ['--address', tally.grpcAddress, '--ca', ca.certFile, '--server-name', 'localhost'];
  const asOperator = (key = operatorKey) => ({ env: { TALLY_CLI_API_KEY: key } });

  beforeAll(async () => {
    ca = createTestCa();
    const server = ca.server();
    operatorCertificate = ca.client('/O=Tally Tests/CN=console', SPIFFE_ID);
    // The callers Tally starts with are made by the command itself.
    const made = jsonOf<{ api_key: string; api_key_sha256: string[] }>(
      await runCli(['caller', 'new', 'operator', '--permission', 'issue', '--permission', 'introspect', '--permission', 'revoke', '--permission', 'keys', '--callers-file', callersFile, '--json']),
    );
    operatorKey = made.api_key;
    jsonOf(await runCli(['caller', 'new', 'console', '--permission', 'keys', '--tls-identity', SPIFFE_ID, '--callers-file', callersFile, '--json']));
    tally = await startTally({
      env: { TALLY_CALLERS_FILE: callersFile, TALLY_TLS_CERT_FILE: server.certFile, TALLY_TLS_KEY_FILE: server.keyFile },
      tls: { ca: ca.cert },
    });
    independent = createGrpcTestClient(
      tally.grpcAddress,
      grpc.credentials.createSsl(ca.cert),
    );
  }, 60_000);
  afterAll(async () => {
    independent?.close();
    await tally?.stop();
  });

  const withKey = (key: string) => ({ metadata: { authorization: `Bearer ${key}` } });

  it('prints a new API key once, and a callers-file entry holding only its SHA-256', async () => {
    const run = await runCli(['caller', 'new', 'orders', '--permission', 'introspect', '--audience', 'orders', '--json']);
    const made = jsonOf<{ name: string; api_key: string; entry: Record<string, unknown> }>(run);
    expect(made.api_key).toMatch(/^tally_ak_[A-Za-z0-9_-]{43}$/);
    const sha256 = (await import('node:crypto')).createHash('sha256').update(made.api_key).digest('hex');
    expect(made.entry).toEqual({ name: 'orders', permissions: ['introspect'], audiences: ['orders'], api_key_sha256: [sha256] });
    expect(run.stderr).toMatch(/shown only now/);
    const file = readFileSync(callersFile, 'utf8');
    expect(file).not.toContain(operatorKey);
  });

  it('issues, introspects and revokes with the API key it made, as an independent client sees', async () => {
    const issued = jsonOf<{ token: string; tokenId: string; format: string }>(
      await runCli(['issue', ...connection(), '--subject', 'alice', '--audience', 'orders', '--scope', 'read', '--ttl', '10m', '--claims', '{"tenant":"acme"}', '--json'], asOperator()),
    );
    expect(issued.format).toBe('TOKEN_FORMAT_OPAQUE');
    const seen = await independent.unary(TokenService.method.introspect, { token: issued.token }, withKey(operatorKey));
    expect(seen).toMatchObject({ active: true, subject: 'alice', tokenId: issued.tokenId, scopes: ['read'] });

    // The token on standard input, so it never shows in `ps`.
    const introspected = jsonOf(await runCli(['introspect', '-', ...connection(), '--json'], { ...asOperator(), stdin: `${issued.token}\n` }));
    expect(introspected).toMatchObject({ active: true, subject: 'alice', audience: ['orders'], claims: { tenant: 'acme' } });
    const table = await runCli(['introspect', '-', ...connection()], { ...asOperator(), stdin: issued.token });
    expect(table.stdout).toMatch(/^active +true$/m);
    expect(table.stdout).toMatch(/^subject +alice$/m);

    const revoked = await runCli(['revoke', '--token-id', issued.tokenId, ...connection(), '--json'], asOperator());
    expect(jsonOf(revoked)).toEqual({ revoked: true, tokenId: issued.tokenId });
    expect((await independent.unary(TokenService.method.introspect, { token: issued.token }, withKey(operatorKey))).active).toBe(false);
    expect(jsonOf(await runCli(['introspect', issued.token, ...connection(), '--json'], asOperator()))).toEqual({ active: false });
  });

  it('issues a JWT and revokes every token of its subject', async () => {
    const issued = jsonOf<{ token: string }>(await runCli(['issue', ...connection(), '--subject', 'bob', '--format', 'jwt', '--json'], asOperator()));
    expect(issued.token.split('.')).toHaveLength(3);
    expect(jsonOf(await runCli(['revoke', '--subject', 'bob', ...connection(), '--json'], asOperator()))).toEqual({ revoked: true, subject: 'bob' });
    expect((await independent.unary(TokenService.method.introspect, { token: issued.token }, withKey(operatorKey))).active).toBe(false);
  });

  it('lists and rotates keys, as a table and as JSON', async () => {
    const before = jsonOf<{ keys: { kid: string; state: string; publicJwk: object }[] }>(await runCli(['keys', 'list', ...connection(), '--json'], asOperator()));
    expect(before.keys.length).toBeGreaterThan(0);
    expect(before.keys[0]!.publicJwk).toBeDefined();
    const rotated = await runCli(['keys', 'rotate', '--algorithm', 'ES256', ...connection()], asOperator());
    expect(rotated.code, rotated.stderr).toBe(0);
    const lines = rotated.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^KID +ALGORITHM +STATE +CREATEDAT/);
    expect(lines.some((line) => /\bES256 +ACTIVE\b/.test(line))).toBe(true);
    const listed = await independent.unary(TokenService.method.listKeys, {}, withKey(operatorKey));
    expect(listed.keys.length).toBe(before.keys.length + 1);
  });

  it('moves JWTs to ML-DSA-65 step by step: a key beside the others, Issue by algorithm, the default, retiring, and pulling a key', async () => {
    type Ring = { keys: { kid: string; algorithm: string; state: string; isDefault?: boolean }[] };
    const ring = (run: CliRun) => jsonOf<Ring>(run).keys;
    const added = ring(await runCli(['keys', 'rotate', '--algorithm', 'ML-DSA-65', ...connection(), '--json'], asOperator()));
    const mlDsa = added.find((key) => key.algorithm === 'ML-DSA-65' && key.state === 'KEY_STATE_ACTIVE')!;
    expect(mlDsa).toBeDefined();

    const issued = jsonOf<{ token: string }>(
      await runCli(['issue', ...connection(), '--subject', 'carol', '--format', 'jwt', '--algorithm', 'ML-DSA-65', '--json'], asOperator()),
    );
    expect(JSON.parse(Buffer.from(issued.token.split('.')[0]!, 'base64url').toString())).toMatchObject({ alg: 'ML-DSA-65', kid: mlDsa.kid });
    expect((await independent.unary(TokenService.method.introspect, { token: issued.token }, withKey(operatorKey))).active).toBe(true);

    const defaulted = ring(await runCli(['keys', 'default', 'ML-DSA-65', ...connection(), '--json'], asOperator()));
    expect(defaulted.filter((key) => key.isDefault === true).map((key) => key.kid)).toEqual([mlDsa.kid]);
    const retired = ring(await runCli(['keys', 'retire', 'EdDSA', ...connection(), '--json'], asOperator()));
    expect(retired.filter((key) => key.algorithm === 'EdDSA').map((key) => key.state)).not.toContain('KEY_STATE_ACTIVE');
    // The default cannot be retired: a one-line error naming why, exit 1.
    expectOneLineFailure(await runCli(['keys', 'retire', 'ML-DSA-65', ...connection()], asOperator()), 1, /ML-DSA-65 is the default/);

    const pulled = ring(await runCli(['keys', 'revoke', mlDsa.kid, ...connection(), '--json'], asOperator()));
    expect(pulled.map((key) => key.kid)).not.toContain(mlDsa.kid);
    expect(pulled.some((key) => key.algorithm === 'ML-DSA-65' && key.state === 'KEY_STATE_ACTIVE' && key.isDefault === true)).toBe(true);
    expect((await independent.unary(TokenService.method.introspect, { token: issued.token }, withKey(operatorKey))).active).toBe(false);
  });

  it('takes the address from TALLY_CLI_ADDRESS and the API key from a file', async () => {
    const keyFile = join(directory, 'operator.key');
    writeFileSync(keyFile, `${operatorKey}\n`, { mode: 0o600 });
    const run = await runCli(['keys', 'list', '--ca', ca.certFile, '--server-name', 'localhost', '--api-key-file', keyFile, '--json'], {
      env: { TALLY_CLI_ADDRESS: tally.grpcAddress },
    });
    expect(jsonOf<{ keys: unknown[] }>(run).keys.length).toBeGreaterThan(0);
  });

  it('calls with a client certificate alone (mutual TLS identity, no API key)', async () => {
    // The server above checks no client certificates; this one requires them.
    const server = ca.server();
    const mutual = await startTally({
      env: { TALLY_CALLERS_FILE: callersFile, TALLY_TLS_CERT_FILE: server.certFile, TALLY_TLS_KEY_FILE: server.keyFile, TALLY_TLS_CLIENT_CA_FILE: ca.certFile },
      tls: { ca: ca.cert, cert: operatorCertificate.cert, key: operatorCertificate.key },
    });
    try {
      const address = ['--address', mutual.grpcAddress, '--ca', ca.certFile, '--server-name', 'localhost'];
      const listed = await runCli(['keys', 'list', ...address, '--cert', operatorCertificate.certFile, '--key', operatorCertificate.keyFile, '--json']);
      expect(jsonOf<{ keys: unknown[] }>(listed).keys.length).toBeGreaterThan(0);
      // The console caller has the keys permission only.
      expectOneLineFailure(
        await runCli(['issue', '--subject', 'x', ...address, '--cert', operatorCertificate.certFile, '--key', operatorCertificate.keyFile]),
        1,
        /refused the call \(permission denied\)/,
      );
    } finally {
      await mutual.stop();
    }
  }, 60_000);

  it('rolls a second key onto a caller: both work until finish-roll, then only the new one', async () => {
    const rolled = jsonOf<{ api_key: string; api_key_sha256: string[] }>(await runCli(['caller', 'roll', 'operator', '--callers-file', callersFile, '--json']));
    expect(rolled.api_key_sha256).toHaveLength(2);
    await eventually(async () => {
      await independent.unary(TokenService.method.listKeys, {}, withKey(rolled.api_key));
    }, 10_000);
    expect(jsonOf(await runCli(['keys', 'list', ...connection(), '--json'], asOperator(operatorKey))).keys).toBeDefined();

    expectOneLineFailure(await runCli(['caller', 'roll', 'operator', '--callers-file', callersFile]), 1, /already has two API keys; finish the last roll first/);
    const finished = jsonOf<{ api_key_sha256: string[] }>(await runCli(['caller', 'finish-roll', 'operator', '--callers-file', callersFile, '--json']));
    expect(finished.api_key_sha256).toEqual([rolled.api_key_sha256[1]]);
    await eventually(async () => {
      const refused = await grpcStatusOf(independent.unary(TokenService.method.listKeys, {}, withKey(operatorKey)));
      expect(refused.code).toBe(grpc.status.UNAUTHENTICATED);
    }, 10_000);
    expectOneLineFailure(await runCli(['keys', 'list', ...connection()], asOperator(operatorKey)), 1, /did not accept the credential \(unauthenticated\)/);
    operatorKey = rolled.api_key;
    expect(jsonOf(await runCli(['keys', 'list', ...connection(), '--json'], asOperator())).keys).toBeDefined();
  });

  describe('fails with one line and a non-zero exit', () => {
    let silent: Server;
    const held: Socket[] = [];
    let silentPort: number;
    let closedPort: number;

    beforeAll(async () => {
      // Accepts connections and never answers: only the deadline ends a call to it.
      silent = createServer((socket) => held.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      silentPort = (silent.address() as AddressInfo).port;
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      closedPort = (probe.address() as AddressInfo).port;
      await new Promise((resolve) => probe.close(resolve));
    });
    afterAll(() => {
      for (const socket of held) socket.destroy();
      silent?.close();
    });

    it('on a bad API key', async () => {
      expectOneLineFailure(await runCli(['keys', 'list', ...connection()], asOperator('tally_ak_not-a-key-anyone-has')), 1, /did not accept the credential \(unauthenticated\).*TALLY_CLI_API_KEY/);
    });

    it('on no credential at all', async () => {
      expectOneLineFailure(await runCli(['keys', 'list', ...connection()]), 1, /unauthenticated/);
    });

    it('on an address where nothing listens', async () => {
      expectOneLineFailure(await runCli(['keys', 'list', '--address', `127.0.0.1:${closedPort}`, '--ca', ca.certFile], asOperator()), 1, /cannot reach Tally at 127\.0\.0\.1:\d+ \(unavailable\): .*ECONNREFUSED/);
    });

    it('on an address that never answers, at the deadline', async () => {
      const started = performance.now();
      const run = await runCli(['keys', 'list', '--address', `127.0.0.1:${silentPort}`, '--ca', ca.certFile, '--timeout', '400ms'], asOperator());
      expectOneLineFailure(run, 1, /no answer from Tally at 127\.0\.0\.1:\d+ within 400 ms \(deadline exceeded\)/);
      expect(performance.now() - started).toBeLessThan(10_000);
    });

    it('on a server certificate it cannot trust (no --ca)', async () => {
      expectOneLineFailure(await runCli(['keys', 'list', '--address', tally.grpcAddress], asOperator()), 1, /cannot trust the certificate of Tally at 127\.0\.0\.1:\d+: unable to verify the first certificate; give --ca FILE/);
    });

    it('on plaintext against a TLS port', async () => {
      const run = await runCli(['keys', 'list', '--address', tally.grpcAddress, '--plaintext', '--timeout', '2s'], asOperator());
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^tally: [^\n]+\n$/);
    });

    it.each([
      [['frobnicate'], /unknown command "frobnicate"/],
      [['keys'], /keys: expected one of keys list, keys rotate/],
      [['keys', 'list', '--bogus'], /Unknown option '--bogus'/],
      [['keys', 'list', '--address', 'no port here'], /--address: expected HOST:PORT/],
      [['keys', 'list', '--timeout', 'soon'], /--timeout: expected a duration/],
      [['keys', 'list', '--output', 'yaml'], /--output: expected table or json/],
      [['keys', 'list', '--cert', '/nonexistent'], /--cert and --key go together/],
      [['issue', '--format', 'jwt'], /--subject is required/],
      [['issue', '--subject', 'a', '--format', 'paseto'], /--format: expected opaque or jwt/],
      [['issue', '--subject', 'a', '--ttl', '10'], /--ttl: expected a duration/],
      [['issue', '--subject', 'a', '--claims', '[1]'], /--claims: expected a JSON object/],
      [['introspect'], /TOKEN is missing/],
      [['revoke', '--subject', 'a', '--client-id', 'b'], /give exactly one of/],
      [['caller', 'new', 'x'], /at least one --permission/],
      [['caller', 'new', 'x', '--permission', 'everything'], /"everything" is not one of introspect, issue, revoke, keys/],
      [['caller', 'roll', 'x'], /--callers-file is required/],
    ])('on bad arguments: %j', async (args, message) => {
      expectOneLineFailure(await runCli(args), 2, message);
    });

    it('on a file it cannot read', async () => {
      expectOneLineFailure(await runCli(['keys', 'list', ...connection(), '--api-key-file', join(directory, 'missing')]), 1, /--api-key-file: cannot read .*ENOENT/);
    });
  });
});

describe('tally check and tally caller on files, without a server', () => {
  const directory = mkdtempSync(join(tmpdir(), 'tally-cli-files-'));

  it.each([
    ['not JSON', '{"callers": [', /is not valid JSON/],
    ['an unknown permission', '{"callers":[{"name":"a","permissions":["root"],"api_key_sha256":["' + 'a'.repeat(64) + '"]}]}', /callers\[0\]\.permissions: "root" is not one of/],
    ['a short hash', '{"callers":[{"name":"a","permissions":["keys"],"api_key_sha256":["abc"]}]}', /callers\[0\]\.api_key_sha256\[0\]: must be the 64 hex digits/],
    ['no credential', '{"callers":[{"name":"a","permissions":["keys"]}]}', /callers\[0\]: needs a credential/],
  ])('check callers refuses a file with %s, naming the entry and field', async (_what, text, message) => {
    const path = join(directory, `bad-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, text);
    expectOneLineFailure(await runCli(['check', 'callers', path]), 1, message);
    // And caller new refuses to add to it rather than overwrite it.
    expectOneLineFailure(await runCli(['caller', 'new', 'b', '--permission', 'keys', '--callers-file', path]), 1, message);
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('check callers lists a good file', async () => {
    const path = join(directory, 'good.json');
    jsonOf(await runCli(['caller', 'new', 'orders', '--permission', 'introspect', '--audience', 'orders', '--callers-file', path, '--json']));
    expect(jsonOf(await runCli(['check', 'callers', path, '--json']))).toEqual([{ name: 'orders', permissions: ['introspect'], audiences: ['orders'] }]);
    expectOneLineFailure(await runCli(['caller', 'new', 'orders', '--permission', 'keys', '--callers-file', path]), 1, /a caller named "orders" exists; .*tally caller roll orders/);
  });

  it('check settings reads TALLY_* as the server does, hiding secrets', async () => {
    const run = await runCli(['check', 'settings', '--json'], {
      env: { TALLY_REDIS_URL: 'redis://:hunter2@redis:6379', TALLY_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'), TALLY_LEASE_MS: '3000' },
    });
    const rows = jsonOf<{ variable: string; value: string; from: string }[]>(run);
    expect(rows.find((row) => row.variable === 'TALLY_LEASE_MS')).toEqual({ variable: 'TALLY_LEASE_MS', value: '3000', from: 'environment' });
    expect(rows.find((row) => row.variable === 'TALLY_GRPC_PORT')).toEqual({ variable: 'TALLY_GRPC_PORT', value: '50051', from: 'default' });
    expect(rows.find((row) => row.variable === 'TALLY_REDIS_URL')?.value).toBe('(hidden)');
    expect(run.stdout).not.toContain('hunter2');
  });

  it.each([
    [{ TALLY_LEASE_MS: '5' }, /invalid settings: TALLY_LEASE_MS: expected milliseconds from 100 to 60000/],
    [{ TALLY_REDIS_URL: 'redis://redis:6379' }, /TALLY_MASTER_KEY: required with TALLY_REDIS_URL/],
    [{ TALLY_CALLERS_FILE: '/nonexistent/callers.json' }, /TALLY_CALLERS_FILE: cannot read the file: ENOENT/],
    [{ OTEL_TRACES_SAMPLER: 'sometimes' }, /invalid settings: OTEL_TRACES_SAMPLER: "sometimes" is not one of/],
  ])('check settings refuses %j in one line', async (env, message) => {
    expectOneLineFailure(await runCli(['check', 'settings'], { env }), 1, message);
  });

  it('check settings reads the callers file the settings name', async () => {
    const path = join(directory, 'broken.json');
    writeFileSync(path, '{"callers": 3}');
    expectOneLineFailure(await runCli(['check', 'settings'], { env: { TALLY_CALLERS_FILE: path } }), 1, /TALLY_CALLERS_FILE: .*must be an object with a "callers" list/);
  });

  it('check settings refuses TLS files whose key does not belong to the certificate', async () => {
    const pki = createTestCa();
    const [first, second] = [pki.server(), pki.server()];
    const env = { TALLY_TLS_CERT_FILE: first.certFile, TALLY_TLS_KEY_FILE: second.keyFile };
    expectOneLineFailure(await runCli(['check', 'settings'], { env }), 1, /invalid settings: TALLY_TLS_CERT_FILE, .*cannot be used together/);
    expect(jsonOf(await runCli(['check', 'settings', '--json'], { env: { ...env, TALLY_TLS_KEY_FILE: first.keyFile } }))).toBeDefined();
  });

  it('runs as `npx tally` from the checkout', async () => {
    const run = await runCli(['--offline', 'tally', 'check', 'settings', '--json'], { command: ['npx'] });
    expect(jsonOf<unknown[]>(run).length).toBeGreaterThan(10);
  });
});
