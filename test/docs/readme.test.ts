// The README's "Try it" section is run, not just read: every `buf curl` and
// `curl` line in it, in order, as written (only the default ports swapped for
// the test server's), against a real Tally started as `npm start` starts it:
// memory store, no callers, protected mode serving loopback. And the settings
// table between its markers must be exactly what --settings-table prints.

import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderSettingsTable } from '../../src/config.js';
import { startTally, type TallyProcess } from '../support/tally-process.js';

const ROOT = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

function section(heading: string): string {
  const start = readme.indexOf(`## ${heading}\n`);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

function commandsOf(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
  return blocks
    .flatMap((block) => block.split('\n'))
    .map((line) => line.trim())
    .filter((line) => /^(TOKEN=\$\()?(npx buf curl|curl) /.test(line));
}

describe('README.md', () => {
  let tally: TallyProcess;
  beforeAll(async () => {
    tally = await startTally();
  });
  afterAll(async () => {
    await tally?.stop();
  });

  it('"Try it" works as written: list, issue, introspect, revoke, introspect again, and Connect JSON with curl', async () => {
    const commands = commandsOf(section('Try it'));
    expect(commands).toHaveLength(7);
    let token = '';
    const outputs: string[] = [];
    for (const written of commands) {
      const command = written
        .replace('http://localhost:50051', `http://${tally.grpcAddress}`)
        .replace('http://localhost:8080', tally.httpUrl);
      // Each line runs in its own shell, so TOKEN is carried from one to the next.
      const script = command.startsWith('TOKEN=') ? `set -o pipefail; ${command} && printf %s "$TOKEN"` : command;
      const { stdout } = await run('bash', ['-c', script], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TOKEN: token },
      });
      if (command.startsWith('TOKEN=')) token = stdout;
      outputs.push(stdout);
    }
    const [services, aliceToken, active, revoked, inactive, bobToken, bobActive] = outputs;
    expect(services).toContain('tally.v1.TokenService');
    expect(aliceToken).toMatch(/^tly_[0-9A-Za-z]{49}$/);
    expect(JSON.parse(active!)).toMatchObject({ active: true, subject: 'alice', scopes: ['orders:read'] });
    expect(JSON.parse(revoked!)).toEqual({});
    expect(JSON.parse(inactive!)).toEqual({});
    expect(bobToken).toMatch(/^tly_[0-9A-Za-z]{49}$/);
    expect(JSON.parse(bobActive!)).toMatchObject({ active: true, subject: 'bob' });
  });

  it('shows the settings table exactly as --settings-table prints it', () => {
    const between = /<!-- settings:start -->\n([\s\S]*?)<!-- settings:end -->/.exec(readme)?.[1];
    expect(between).toBe(renderSettingsTable());
  });
});

describe('the folder map', () => {
  // Each line names a folder (or file) and, in its words, the files it holds:
  // every one of them must exist there, so the map cannot drift from the tree.
  const block = /```\n([\s\S]*?)```/.exec(section('The folders'))![1]!;
  const rows = block
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [, indent, path, words] = /^( *)(\S+)\s*(.*)$/.exec(line)!;
      return { indent: indent!.length, path: path!, words: words! };
    });

  it('names only folders and files that exist, and the files each line says a folder holds', () => {
    let parent = '';
    const missing: string[] = [];
    for (const { indent, path, words } of rows) {
      if (indent === 0) parent = path.endsWith('/') ? path : '';
      const base = indent === 0 ? path : join(parent, path);
      if (path.includes('*')) continue;
      if (!existsSync(join(ROOT, base))) missing.push(base);
      if (!path.endsWith('/')) continue;
      for (const [, file] of words.matchAll(/(?:^|[\s(,])([\w-]+\.(?:ts|mjs|js))\b/g)) {
        // A file named in a folder's words is that folder's (or one of its subfolders', named with it).
        if (!existsSync(join(ROOT, base, file!))) missing.push(join(base, file!));
      }
    }
    expect(rows.length).toBeGreaterThan(20);
    expect(missing).toEqual([]);
  });
});
