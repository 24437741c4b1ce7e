import { describe, expect, it } from 'vitest';
import { apiKeyHash, authenticate, bearerCredential, LOCAL_CALLER } from '../../src/auth/authenticate.js';
import { authorize, authorizeAudiences, authorizeBroadRevoke } from '../../src/auth/authorize.js';
import { NO_CALLERS, parseCallers } from '../../src/auth/callers.js';

const ordersKey = 'orders-key-0123456789';
const nextOrdersKey = 'orders-key-next-0123456789';
const file = JSON.stringify({
  callers: [
    { name: 'orders', permissions: ['introspect'], audiences: ['orders'], api_key_sha256: [apiKeyHash(ordersKey), apiKeyHash(nextOrdersKey)] },
    { name: 'admin', permissions: ['issue', 'revoke', 'keys', 'introspect'], tls_identity: 'spiffe://example.org/admin' },
  ],
});

describe('the callers file', () => {
  it.each([
    ['not JSON', '{', /callers file: is not valid JSON/],
    ['no callers list', '{}', /must be an object with a "callers" list/],
    ['a caller without credential', '{"callers":[{"name":"a","permissions":[]}]}', /callers\[0\]: needs a credential/],
    ['an unknown permission', '{"callers":[{"name":"a","permissions":["root"],"tls_identity":"x"}]}', /callers\[0\].permissions: "root" is not one of/],
    ['a malformed hash', '{"callers":[{"name":"a","api_key_sha256":["abc"]}]}', /callers\[0\].api_key_sha256\[0\]: must be the 64 hex digits/],
    ['three keys', JSON.stringify({ callers: [{ name: 'a', api_key_sha256: ['a', 'b', 'c'].map(apiKeyHash) }] }), /at most 2 keys/],
    ['a duplicate name', '{"callers":[{"name":"a","tls_identity":"CN=x"},{"name":"a","tls_identity":"CN=y"}]}', /callers\[1\].name: "a" is used twice/],
    ['a bare common name as tls_identity', '{"callers":[{"name":"a","tls_identity":"billing"}]}', /callers\[0\].tls_identity: must be a URI SAN .* or a subject/],
    ['a subject with a dangling escape', '{"callers":[{"name":"a","tls_identity":"CN=billing\\\\"}]}', /callers\[0\].tls_identity/],
    ['one subject twice, written two ways', '{"callers":[{"name":"a","tls_identity":"O=Example,CN=b"},{"name":"b","tls_identity":"o=Example, cn=b"}]}', /callers\[1\].tls_identity: is the identity of another caller/],
    ['a shared key', JSON.stringify({ callers: [{ name: 'a', api_key_sha256: [apiKeyHash('k')] }, { name: 'b', api_key_sha256: [apiKeyHash('k')] }] }), /another caller has/],
    ['an unknown field', '{"callers":[{"name":"a","tls_identity":"x","api_key":"plain"}]}', /callers\[0\].api_key: is not a known field/],
    ['empty audiences', '{"callers":[{"name":"a","tls_identity":"x","audiences":[]}]}', /callers\[0\].audiences: must name at least one/],
  ])('refuses %s, naming the place', (_name, text, message) => {
    expect(() => parseCallers(text)).toThrow(message);
  });
});

describe('authentication', () => {
  const directory = parseCallers(file);
  const policy = { directory, protectedMode: true };

  it('knows a caller by either of its two API keys, so keys roll over without downtime', () => {
    expect(authenticate({ bearer: ordersKey, loopback: false }, policy).name).toBe('orders');
    expect(authenticate({ bearer: nextOrdersKey, loopback: false }, policy).name).toBe('orders');
  });

  it('knows a caller by its client certificate identity', () => {
    expect(authenticate({ tlsIdentities: ['spiffe://example.org/admin'], loopback: false }, policy).name).toBe('admin');
  });

  it.each([
    ['no credential', { loopback: false }],
    ['no credential from loopback once callers exist', { loopback: true }],
    ['an unknown key', { bearer: 'guess', loopback: false }],
    ['a wrong key beside a good certificate', { bearer: 'guess', tlsIdentities: ['spiffe://example.org/admin'], loopback: false }],
    ['an unknown certificate', { tlsIdentities: ['spiffe://example.org/stranger'], loopback: false }],
  ])('refuses %s', (_name, credentials) => {
    expect(() => authenticate(credentials, policy)).toThrow(expect.objectContaining({ code: 'ERR_UNAUTHENTICATED' }));
  });

  it('never puts the presented key in its error', () => {
    try {
      authenticate({ bearer: 'super-secret-guess', loopback: false }, policy);
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).not.toContain('super-secret-guess');
    }
  });

  it('in protected mode with no callers, serves loopback peers only', () => {
    expect(authenticate({ loopback: true, host: '127.0.0.1:8080' }, { directory: NO_CALLERS, protectedMode: true })).toBe(LOCAL_CALLER);
    expect(() => authenticate({ loopback: false, host: '127.0.0.1:8080' }, { directory: NO_CALLERS, protectedMode: true })).toThrow(/protected mode/);
    expect(authenticate({ loopback: false }, { directory: NO_CALLERS, protectedMode: false }).name).toBe('anonymous');
  });

  it.each(['localhost', 'localhost:8080', 'LOCALHOST', 'tally.localhost:50051', '127.0.0.1', '127.1.2.3:80', '[::1]', '[::1]:8080'])(
    'in protected mode, serves a loopback peer that names the loopback host %s',
    (host) => {
      expect(authenticate({ loopback: true, host }, { directory: NO_CALLERS, protectedMode: true })).toBe(LOCAL_CALLER);
    },
  );

  it.each([
    ['a rebinding name', 'attacker.example'],
    ['a rebinding name with a port', 'attacker.example:8080'],
    ['a name that merely starts like localhost', 'localhost.attacker.example'],
    ['a non-loopback address', '10.0.0.1:8080'],
    ['no Host at all', undefined],
  ])('in protected mode, refuses a loopback peer that names %s (DNS rebinding)', (_name, host) => {
    expect(() => authenticate({ loopback: true, host }, { directory: NO_CALLERS, protectedMode: true })).toThrow(/protected mode/);
  });

  it.each([true, false])('with no callers, refuses a presented key even from loopback (protected mode %s)', (protectedMode) => {
    expect(() => authenticate({ bearer: 'anything', loopback: true, host: 'localhost' }, { directory: NO_CALLERS, protectedMode })).toThrow(
      expect.objectContaining({ code: 'ERR_UNAUTHENTICATED' }),
    );
  });

  it.each([
    ['Bearer abc', 'abc'],
    ['bearer abc', 'abc'],
    ['Basic abc', undefined],
    ['Bearer', undefined],
    ['Bearer a b', undefined],
    [undefined, undefined],
  ])('reads the bearer credential of %j', (header, expected) => {
    expect(bearerCredential(header)).toBe(expected);
  });
});

describe('authorization', () => {
  const directory = parseCallers(file);
  const orders = directory.byApiKeyHash.get(apiKeyHash(ordersKey))!;
  const admin = directory.byTlsIdentity.get('spiffe://example.org/admin')!;

  it('lets a caller make the calls its permissions name, and no other', () => {
    expect(() => authorize(orders, 'tally.v1.TokenService/Introspect')).not.toThrow();
    expect(() => authorize(orders, 'POST /oauth2/introspect')).not.toThrow();
    expect(() => authorize(orders, 'tally.v1.TokenService/Issue')).toThrow(/lacks the "issue" permission/);
    expect(() => authorize(orders, 'tally.v1.TokenService/RotateKeys')).toThrow(expect.objectContaining({ code: 'ERR_PERMISSION_DENIED' }));
    expect(() => authorize(admin, 'tally.v1.TokenService/RotateKeys')).not.toThrow();
    expect(() => authorize(orders, 'tally.v1.TokenService/RevokeKey')).toThrow(/lacks the "keys" permission/);
    expect(() => authorize(admin, 'tally.v1.TokenService/RevokeKey')).not.toThrow();
    expect(() => authorize(admin, 'tally.v1.TokenService/Unknown')).toThrow(/not a call/);
  });

  it('keeps a limited caller to its own audiences', () => {
    expect(() => authorizeAudiences(orders, ['orders'])).not.toThrow();
    expect(() => authorizeAudiences(orders, ['orders', 'billing'])).toThrow(/audience "billing"/);
    expect(() => authorizeAudiences(admin, ['anything'])).not.toThrow();
    expect(() => authorizeBroadRevoke(orders)).toThrow(/only revoke single tokens/);
    expect(() => authorizeBroadRevoke(admin)).not.toThrow();
  });
});
