// docs/recipes.md is run, not just read: every `buf curl` command in it is
// parsed out of the page and run as written (only the default port swapped
// for the test server's) against the real process; every grpcurl command must
// make the same call with the same data, so the two halves cannot drift apart.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCallersFile } from '../support/keyed-callers.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const ROOT = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);

interface Recipe {
  tool: 'grpcurl' | 'buf';
  command: string;
  /** `package.Service/Method` */
  method: string;
  data: string;
}

function recipesOf(markdown: string): Recipe[] {
  const blocks = [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
  const commands = blocks.flatMap((block) => block.replace(/\\\n\s*/g, ' ').split('\n')).map((line) => line.trim());
  return commands
    .filter((line) => line.startsWith('grpcurl ') || line.startsWith('buf curl '))
    .map((command) => ({
      tool: command.startsWith('grpcurl') ? 'grpcurl' : 'buf',
      command,
      method: /(?:localhost:\d+\/| )([\w.]+\/\w+)$/.exec(command)?.[1] ?? '',
      data: /-d ('[^']*'|"(?:[^"\\]|\\.)*")/.exec(command)?.[1] ?? '',
    }));
}

describe('docs/recipes.md', () => {
  const recipes = recipesOf(readFileSync(join(ROOT, 'docs/recipes.md'), 'utf8'));
  const callers = writeCallersFile([{ name: 'operator', permissions: ['issue', 'introspect', 'revoke', 'keys'] }]);
  let tally: TallyProcess;

  /** Runs a buf curl recipe as written, with the test server's port in place of the default. */
  const runRecipe = async (method: string, env: Record<string, string> = {}) => {
    const recipe = recipes.find((candidate) => candidate.tool === 'buf' && candidate.method === method);
    expect(recipe, method).toBeDefined();
    const command = recipe!.command.replace('http://localhost:50051/', `http://${tally.grpcAddress}/`);
    const { stdout } = await run('bash', ['-c', command], {
      cwd: ROOT,
      env: {
        PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? ''}`,
        HOME: process.env.HOME ?? '',
        TALLY_API_KEY: callers.keys.operator!,
        ...env,
      },
    });
    return JSON.parse(stdout) as Record<string, unknown>;
  };

  beforeAll(async () => {
    tally = await startTally({ env: { TALLY_CALLERS_FILE: callers.path } });
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it('has a grpcurl and a buf curl recipe for every RPC, making the same call with the same data', () => {
    const methods = [
      'tally.v1.TokenService/Issue',
      'tally.v1.TokenService/Introspect',
      'tally.v1.TokenService/Revoke',
      'tally.v1.TokenService/RotateKeys',
      'tally.v1.TokenService/ListKeys',
      'tally.v1.TokenService/RevokeKey',
      'grpc.health.v1.Health/Check',
    ];
    for (const tool of ['grpcurl', 'buf'] as const) {
      expect(recipes.filter((recipe) => recipe.tool === tool).map((recipe) => recipe.method).sort(), tool).toEqual([...methods].sort());
    }
    for (const method of methods) {
      const [grpcurl, buf] = (['grpcurl', 'buf'] as const).map((tool) => recipes.find((recipe) => recipe.tool === tool && recipe.method === method)!);
      expect(grpcurl!.data, method).toBe(buf!.data);
      expect(grpcurl!.command.includes('$TALLY_API_KEY'), method).toBe(buf!.command.includes('$TALLY_API_KEY'));
      expect(buf!.command).toContain('http://localhost:50051/');
      expect(grpcurl!.command).toContain(' localhost:50051 ');
    }
  });

  it('runs every buf curl recipe against a running server, as written', async () => {
    const issued = await runRecipe('tally.v1.TokenService/Issue');
    expect(issued.token).toMatch(/^tly_/);
    const TOKEN = issued.token as string;

    expect(await runRecipe('tally.v1.TokenService/Introspect', { TOKEN })).toMatchObject({ active: true, subject: 'alice', audience: ['orders'] });
    expect(await runRecipe('tally.v1.TokenService/Revoke')).toEqual({});
    // Revoking the subject took the token with it.
    expect(await runRecipe('tally.v1.TokenService/Introspect', { TOKEN })).toEqual({});

    const rotated = await runRecipe('tally.v1.TokenService/RotateKeys');
    const keys = rotated.keys as Array<{ algorithm: string; state: string; isDefault?: boolean }>;
    expect(keys.filter((key) => key.state === 'KEY_STATE_ACTIVE').map((key) => [key.algorithm, key.isDefault ?? false])).toEqual([
      ['EdDSA', true],
      ['ML-DSA-65', false],
    ]);
    const listed = await runRecipe('tally.v1.TokenService/ListKeys');
    expect((listed.keys as unknown[]).length).toBe(keys.length);
    // Pulling an active key replaces it with a new one of its algorithm.
    const mlDsa = (listed.keys as Array<{ kid: string; algorithm: string; state: string }>).find((key) => key.algorithm === 'ML-DSA-65' && key.state === 'KEY_STATE_ACTIVE')!;
    const pulled = (await runRecipe('tally.v1.TokenService/RevokeKey', { KID: mlDsa.kid })).keys as Array<{ kid: string; algorithm: string; state: string }>;
    expect(pulled.map((key) => key.kid)).not.toContain(mlDsa.kid);
    expect(pulled.filter((key) => key.algorithm === 'ML-DSA-65' && key.state === 'KEY_STATE_ACTIVE')).toHaveLength(1);

    expect(await runRecipe('grpc.health.v1.Health/Check')).toEqual({ status: 'SERVING' });
  });
});
