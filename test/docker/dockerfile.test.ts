// The Dockerfile's promises, checked without a Docker engine: first by reading
// it, then by replaying its steps (scripts/docker-steps.sh) and probing the
// server the way its HEALTHCHECK does.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { commandOf, environmentOf, parseDockerfile, type Instruction, type Stage } from './dockerfile.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const stages = parseDockerfile(readFileSync(join(projectRoot, 'Dockerfile'), 'utf8'));
const runtime = stages.at(-1)!;
const build = stages[0]!;

const all = (stage: Stage, keyword: string): Instruction[] => stage.instructions.filter((instruction) => instruction.keyword === keyword);
const runCommands = (stage: Stage): string[] => all(stage, 'RUN').map((instruction) => instruction.argument);

describe('the Dockerfile', () => {
  it('builds in one stage and runs from another, both on Node.js 24', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.base).toMatch(/^node:24[.-]/);
    expect(runCommands(build)).toEqual(expect.arrayContaining([expect.stringMatching(/\bnpm ci\b/), 'npm run build']));
  });

  it('installs only production dependencies in the final stage', () => {
    const installs = runCommands(runtime).filter((command) => /\bnpm (ci|install|i)\b/.test(command));
    expect(installs).not.toHaveLength(0);
    for (const command of installs) expect(command).toMatch(/\bnpm ci\b.*--omit=dev/);
  });

  it('runs the compiled output copied from the build stage', () => {
    expect(all(runtime, 'COPY').some((copy) => copy.flags.from === build.name && /\bdist\b/.test(copy.argument))).toBe(true);
    expect(commandOf(all(runtime, 'CMD').at(-1)!.argument)).toEqual(['node', 'dist/main.js']);
  });

  it('runs as a user other than root in the final stage', () => {
    const user = all(runtime, 'USER').at(-1)?.argument.trim();
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:.*)?$/);
    // A USER before the final CMD applies to it; one after nothing would not.
    const lastUser = runtime.instructions.findLastIndex((instruction) => instruction.keyword === 'USER');
    const lastCmd = runtime.instructions.findLastIndex((instruction) => instruction.keyword === 'CMD');
    expect(lastUser).toBeLessThan(lastCmd);
  });

  it('exposes the gRPC port 50051 and the HTTP port 8080', () => {
    const ports = all(runtime, 'EXPOSE').flatMap((instruction) => instruction.argument.split(/\s+/));
    expect(ports).toEqual(expect.arrayContaining(['50051', '8080']));
  });

  it('has a HEALTHCHECK that probes /healthz with node, since the slim image has no curl', () => {
    const healthchecks = all(runtime, 'HEALTHCHECK');
    expect(healthchecks).toHaveLength(1);
    const probe = commandOf(healthchecks[0]!.argument.replace(/^CMD\s+/, ''));
    expect(probe[0]).toBe('node');
    expect(probe.join(' ')).toContain('/healthz');
  });

  it.each([
    ['ENV', (instruction: Instruction) => Object.keys(environmentOf(instruction.argument))],
    ['ARG', (instruction: Instruction) => [instruction.argument.split('=')[0]!.trim()]],
  ])('carries no secret in an %s', (keyword, names) => {
    const secretLike = /KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE/i;
    for (const stage of stages) {
      for (const instruction of all(stage, keyword)) {
        expect(names(instruction).filter((name) => secretLike.test(name)), `line ${instruction.line}`).toEqual([]);
      }
    }
  });

  it('keeps out of the build context what no stage copies, and ignores nothing a stage does copy', () => {
    const ignored = readFileSync(join(projectRoot, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git']));
    const copiedFromContext = stages.flatMap((stage) =>
      all(stage, 'COPY')
        .filter((copy) => copy.flags.from === undefined)
        .flatMap((copy) => copy.argument.split(/\s+/).slice(0, -1)),
    );
    for (const source of copiedFromContext) expect(ignored, source).not.toContain(source);
  });
});

describe('the Dockerfile replayed without Docker', () => {
  it('builds, starts as an unprivileged user, becomes healthy, and its `npx tally` lists the keys', { timeout: 240_000 }, async () => {
    const child = spawn(join(projectRoot, 'scripts', 'docker-steps.sh'), [], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const code = await new Promise<number | null>((done) => child.once('close', done));
    expect(code, output).toBe(0);
    const uid = output.match(/healthy after [\d.]+ s, server uid (\d+)/)?.[1];
    expect(uid, output).toBeDefined();
    if (process.getuid?.() === 0) expect(Number(uid)).not.toBe(0);
    // npm's own notices may come first; the command's answer is the JSON document.
    const listed = output.match(/operator command in the image: exit 0\n[\s\S]*?^(\{\n {2}"keys"[\s\S]*?^\})$/m)?.[1];
    expect(listed, output).toBeDefined();
    expect((JSON.parse(listed!) as { keys: { state: string }[] }).keys.map((key) => key.state)).toContain('KEY_STATE_ACTIVE');
  });
});
