// One runtime everywhere: the Node.js that package.json's engines asks for is
// the one the tests run on, the one the Dockerfile builds and runs on, and the
// one the README's set-up and .ci/run bring when the machine's own is older.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseDockerfile } from '../docker/dockerfile.js';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const run = promisify(execFile);
const engineMajor = Number(/>=\s*(\d+)/.exec(JSON.parse(read('package.json')).engines.node)?.[1]);

describe('the Node.js runtime', () => {
  it('engines asks for Node.js 24 or later, and the tests run on it', () => {
    expect(engineMajor).toBeGreaterThanOrEqual(24);
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(engineMajor);
    // OpenSSL 3.5 is what brings ML-DSA and hybrid ML-KEM TLS.
    const [major, minor] = process.versions.openssl.split('.').map(Number);
    expect(major! * 100 + minor!).toBeGreaterThanOrEqual(305);
  });

  it('the Dockerfile builds and runs on the same major version', () => {
    for (const stage of parseDockerfile(read('Dockerfile'))) expect(stage.base).toMatch(new RegExp(`^node:${engineMajor}[.-]`));
  });

  it('the README set-up and .ci/run both bring it with scripts/use-node-24.sh', () => {
    const setup = read('README.md').split('\n## Set-up\n')[1]!.split('\n## ')[0]!;
    const commands = [...setup.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!.trim());
    expect(commands).toEqual(['. scripts/use-node-24.sh && npm ci && npm start', '. scripts/use-node-24.sh && npm test']);
    expect(read('.ci/run')).toMatch(/^\. scripts\/use-node-24\.sh$/m);
  });

  it('scripts/use-node-24.sh leaves a Node.js 24 that is already first on the PATH alone', async () => {
    const { stdout } = await run('bash', ['-c', '. scripts/use-node-24.sh && command -v node && node --version'], {
      cwd: ROOT,
      env: { PATH: `${join(process.execPath, '..')}:/usr/bin:/bin`, HOME: '/nonexistent' },
    });
    const [path, version] = stdout.trim().split('\n');
    expect(path).toBe(process.execPath);
    expect(version).toBe(process.version);
  });
});
