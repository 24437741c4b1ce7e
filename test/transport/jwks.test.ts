// How long a verifier may keep a JWKS copy: stale-if-error is bounded by the
// rotation settings, because a copy kept longer also keeps a key revoked
// since (RevokeKey) or a rotation ago.
import { afterEach, describe, expect, it } from 'vitest';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const running: TallyProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((tally) => tally.stop()));
});

async function cacheControl(env: Record<string, string>): Promise<string[]> {
  const tally = await startTally({ env });
  running.push(tally);
  return Promise.all(
    ['/.well-known/jwks.json', '/.well-known/internal-jwks.json'].map(async (path) => (await fetch(`${tally.httpUrl}${path}`)).headers.get('cache-control') ?? ''),
  );
}

describe('JWKS staleness', () => {
  it('lasts no longer than the rotation interval', async () => {
    expect(await cacheControl({ TALLY_KEY_ROTATION_INTERVAL: '1h', TALLY_JWKS_MAX_AGE: '30s' })).toEqual([
      'public, max-age=30, stale-if-error=3600',
      'public, max-age=30, stale-if-error=3600',
    ]);
  });

  it('lasts no longer than the longest token lifetime', async () => {
    expect(await cacheControl({ TALLY_MAX_TOKEN_TTL: '2h', TALLY_TOKEN_TTL: '1h' })).toEqual([
      'public, max-age=60, stale-if-error=7200',
      'public, max-age=60, stale-if-error=7200',
    ]);
  });
});

describe('RevokeKey and the JWKS', () => {
  it('takes the key out of /.well-known/jwks.json at once, over Connect JSON', async () => {
    const tally = await startTally();
    running.push(tally);
    const kids = async () => ((await (await fetch(`${tally.httpUrl}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map((key) => key.kid);
    const [kid] = await kids();
    const response = await fetch(`${tally.httpUrl}/tally.v1.TokenService/RevokeKey`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kid }),
    });
    expect(response.status).toBe(200);
    const { keys } = (await response.json()) as { keys: Array<{ kid: string; state: string }> };
    expect(keys.map((key) => key.kid)).not.toContain(kid);
    expect(keys.filter((key) => key.state === 'KEY_STATE_ACTIVE')).toHaveLength(1);
    const after = await kids();
    expect(after).not.toContain(kid);
    expect(after).toEqual(keys.map((key) => key.kid));
  });
});
