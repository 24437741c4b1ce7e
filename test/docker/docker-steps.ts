// Replays the Dockerfile without a Docker engine: every stage becomes a directory
// standing for the image's root, COPY copies into it, RUN runs there, and the last
// stage's CMD is started as its USER (or `nobody`, when that user does not exist
// here) and probed with the HEALTHCHECK command until it reports healthy.
//
// It catches what a real build would: a file the build needs but the Dockerfile
// does not copy, a runtime import of a dev dependency, a server that cannot start
// from the runtime stage alone or as an unprivileged user.
//
// Usage (from the repository root): scripts/docker-steps.sh [--keep]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandOf, environmentOf, parseDockerfile, type Stage } from './dockerfile.js';

export interface DockerStepsResult {
  readonly healthy: boolean;
  /** The uid the server ran as, read from /proc. */
  readonly serverUid: number | undefined;
  readonly user: string;
  readonly secondsToHealthy: number | undefined;
  readonly workDirectory: string;
  readonly serverLog: string;
  /** `npx tally keys list` run in the image against the server: its exit code and output. */
  readonly operatorCommand: { code: number | null; output: string } | undefined;
}

interface BuiltStage {
  readonly root: string;
  /** WORKDIR as the image sees it. */
  imageWorkingDirectory: string;
  /** The same directory here. */
  workingDirectory: string;
  environment: Record<string, string>;
  user: string | undefined;
  command: string[] | undefined;
  healthcheck: string[] | undefined;
  /** COPY --chown targets, given to the replay's user once it is known. */
  chowned: { path: string; owner: string }[];
}

const healthyWithinMilliseconds = 30_000;
const setprivPath = '/usr/bin/setpriv';

export async function runDockerSteps(projectRoot: string, log: (line: string) => void = console.log, keep = false): Promise<DockerStepsResult> {
  const stages = parseDockerfile(readFileSync(join(projectRoot, 'Dockerfile'), 'utf8'));
  const workDirectory = mkdtempSync(join(tmpdir(), 'tally-docker-steps-'));
  // An unprivileged user must be able to reach the runtime stage's files, as in an image.
  chmodSync(workDirectory, 0o755);
  let server: ChildProcess | undefined;
  try {
    const built = new Map<string, BuiltStage>();
    let last: BuiltStage | undefined;
    for (const [index, stage] of stages.entries()) {
      last = buildStage(stage, join(workDirectory, stage.name ?? `stage-${index}`), projectRoot, built, log);
      built.set(stage.name ?? String(index), last);
    }
    if (last?.command === undefined) throw new Error('the last stage has no CMD');
    if (last.healthcheck === undefined) throw new Error('the last stage has no HEALTHCHECK');

    const user = runAsUser(last.user);
    // COPY --chown=<the image's user> goes to whoever stands for that user here.
    for (const { path, owner } of last.chowned) {
      if (owner !== last.user) throw new Error(`COPY --chown=${owner}: the replay only knows the image's USER (${last.user})`);
      if (user.uid !== undefined) execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, path]);
    }
    // Fixed ports could be taken on a developer's machine; the image's defaults are checked by the Dockerfile test.
    const environment = {
      ...last.environment,
      TALLY_HOST: '127.0.0.1',
      TALLY_HTTP_PORT: String(await freePort()),
      TALLY_GRPC_PORT: String(await freePort()),
    };
    const serverLogPath = join(workDirectory, 'server.log');
    log(`$ ${last.command.join(' ')}  (in ${last.workingDirectory}, as ${user.name})`);
    server = spawnAs(user, last.command, last.workingDirectory, environment, serverLogPath);
    const started = Date.now();
    const healthy = await probeUntilHealthy(user, last.healthcheck, last.workingDirectory, environment, server);
    const seconds = (Date.now() - started) / 1_000;
    const serverUid = server.pid === undefined ? undefined : uidOf(server.pid);
    log(healthy ? `healthy after ${seconds.toFixed(1)} s, server uid ${serverUid}` : 'never became healthy');
    const operatorCommand = healthy ? await runOperatorCommand(user, last, workDirectory, environment) : undefined;
    return {
      operatorCommand,
      healthy,
      serverUid,
      user: user.name,
      secondsToHealthy: healthy ? seconds : undefined,
      workDirectory,
      serverLog: readFileSync(serverLogPath, 'utf8'),
    };
  } finally {
    if (server !== undefined) await stop(server);
    if (!keep) rmSync(workDirectory, { recursive: true, force: true });
  }
}

function buildStage(stage: Stage, root: string, projectRoot: string, built: Map<string, BuiltStage>, log: (line: string) => void): BuiltStage {
  mkdirSync(root, { recursive: true });
  chmodSync(root, 0o755);
  const state: BuiltStage = {
    root,
    imageWorkingDirectory: '/',
    workingDirectory: root,
    environment: {},
    user: undefined,
    command: undefined,
    healthcheck: undefined,
    chowned: [],
  };
  const inImage = (path: string): string => join(root, posix.resolve(state.imageWorkingDirectory, path));
  log(`# stage ${stage.name ?? '(unnamed)'} FROM ${stage.base}`);
  for (const instruction of stage.instructions) {
    switch (instruction.keyword) {
      case 'WORKDIR':
        state.imageWorkingDirectory = posix.resolve(state.imageWorkingDirectory, instruction.argument.trim());
        state.workingDirectory = inImage('.');
        mkdirSync(state.workingDirectory, { recursive: true });
        break;
      case 'ENV':
        Object.assign(state.environment, environmentOf(instruction.argument));
        break;
      case 'COPY': {
        const parts = instruction.argument.split(/\s+/);
        const destination = parts.pop();
        if (destination === undefined || parts.length === 0) throw new Error(`line ${instruction.line}: COPY needs a source and a destination`);
        const from = instruction.flags.from;
        const sourceStage = from === undefined ? undefined : built.get(from);
        if (from !== undefined && sourceStage === undefined) throw new Error(`line ${instruction.line}: no stage named ${from}`);
        const target = inImage(destination);
        for (const source of parts) {
          const path = sourceStage === undefined ? resolve(projectRoot, source) : join(sourceStage.root, posix.resolve(posix.sep, source));
          if (!existsSync(path)) throw new Error(`line ${instruction.line}: COPY source ${source} does not exist`);
          const intoDirectory = destination.endsWith('/') || parts.length > 1;
          const copyTo = statSync(path).isDirectory() || !intoDirectory ? target : join(target, basename(path));
          mkdirSync(dirname(copyTo), { recursive: true });
          cpSync(path, copyTo, { recursive: true });
          if (instruction.flags.chown !== undefined) state.chowned.push({ path: copyTo, owner: instruction.flags.chown.split(':')[0]! });
        }
        log(`COPY ${from === undefined ? '' : `--from=${from} `}${instruction.argument}`);
        break;
      }
      case 'RUN': {
        // A cache mount (--mount=type=cache) is the machine's own npm cache here, which is what it stands for.
        const command = commandOf(instruction.argument);
        log(`RUN ${instruction.argument}`);
        execFileSync(command[0]!, command.slice(1), {
          cwd: state.workingDirectory,
          env: { ...process.env, ...state.environment },
          stdio: ['ignore', 'inherit', 'inherit'],
        });
        break;
      }
      case 'USER':
        state.user = instruction.argument.trim();
        break;
      case 'CMD':
        state.command = commandOf(instruction.argument);
        break;
      case 'HEALTHCHECK': {
        const probe = instruction.argument.match(/^CMD\s+(.*)$/s);
        if (!probe) throw new Error(`line ${instruction.line}: HEALTHCHECK without CMD`);
        state.healthcheck = commandOf(probe[1]!);
        break;
      }
      case 'EXPOSE':
      case 'LABEL':
      case 'STOPSIGNAL':
      case 'ARG':
        break;
      default:
        throw new Error(`line ${instruction.line}: ${instruction.keyword} is not replayed by this script; teach it`);
    }
  }
  // Everything the image holds is readable by its user; directories reachable.
  execFileSync('chmod', ['-R', 'a+rX', root]);
  return state;
}

interface RunAs {
  readonly name: string;
  readonly uid: number | undefined;
  readonly gid: number | undefined;
}

/** The image's USER when it exists here, else nobody; unchanged when this process cannot switch users. */
function runAsUser(imageUser: string | undefined): RunAs {
  if (imageUser === undefined || imageUser === 'root' || imageUser === '0') return { name: imageUser ?? 'root', uid: undefined, gid: undefined };
  if (process.getuid?.() !== 0) return { name: `${process.env.USER ?? 'current user'} (not root: cannot switch)`, uid: undefined, gid: undefined };
  for (const name of [imageUser, 'nobody']) {
    try {
      const quiet = { encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ('ignore' | 'pipe')[] };
      const uid = Number(execFileSync('id', ['-u', name], quiet).trim());
      const gid = Number(execFileSync('id', ['-g', name], quiet).trim());
      return { name: name === imageUser ? name : `nobody (no "${imageUser}" user here)`, uid, gid };
    } catch {
      // Not on this machine; try the next.
    }
  }
  throw new Error(`neither ${imageUser} nor nobody exists on this machine`);
}

function spawnAs(user: RunAs, command: string[], cwd: string, environment: Record<string, string>, logPath?: string): ChildProcess {
  const output = logPath === undefined ? 'ignore' : openSync(logPath, 'a');
  const env = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', ...environment };
  // Docker resolves `node` on the image's PATH; here it is the node running this script.
  const resolved = command[0] === 'node' ? [process.execPath, ...command.slice(1)] : command;
  // setpriv also ties the child's life to this process: a killed test leaves no server behind.
  const viaSetpriv = existsSync(setprivPath);
  const switchUser = user.uid === undefined ? [] : [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups'];
  const [file, ...args] = viaSetpriv ? [setprivPath, '--pdeathsig', 'KILL', ...switchUser, ...resolved] : resolved;
  const child = spawn(file!, args, {
    cwd,
    env,
    stdio: ['ignore', output, output],
    ...(viaSetpriv || user.uid === undefined ? {} : { uid: user.uid, gid: user.gid }),
  });
  if (typeof output === 'number') closeSync(output);
  return child;
}

/**
 * The operator's command as `docker exec` would run it: `npx tally` in the
 * image's working directory, as its user, from the compiled output alone
 * (the runtime stage has no src/ and no tsx). Protected mode serves this
 * loopback client without a credential.
 */
async function runOperatorCommand(user: RunAs, stage: BuiltStage, workDirectory: string, environment: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const outputPath = join(workDirectory, 'operator-command.log');
  const cache = join(workDirectory, 'npm-cache');
  mkdirSync(cache, { recursive: true });
  chmodSync(cache, 0o777);
  // npx as the image's PATH finds it (node's own bin directory holds only node here).
  const command = ['npx', '--offline', 'tally', 'keys', 'list', '--plaintext', '--address', `127.0.0.1:${environment.TALLY_GRPC_PORT}`, '--json'];
  const child = spawnAs(user, command, stage.workingDirectory, { ...stage.environment, npm_config_cache: cache, HOME: cache }, outputPath);
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  return { code, output: readFileSync(outputPath, 'utf8') };
}

async function probeUntilHealthy(
  user: RunAs,
  healthcheck: string[],
  cwd: string,
  environment: Record<string, string>,
  server: ChildProcess,
): Promise<boolean> {
  const deadline = Date.now() + healthyWithinMilliseconds;
  while (Date.now() < deadline) {
    if (server.exitCode !== null || server.signalCode !== null) return false;
    const probe = spawnAs(user, healthcheck, cwd, environment);
    const code = await new Promise<number | null>((done) => probe.once('exit', done));
    if (code === 0) return true;
    await new Promise((done) => setTimeout(done, 250));
  }
  return false;
}

function uidOf(pid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m);
    return line ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  const forced = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(forced);
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (address !== null && typeof address === 'object' ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const keep = process.argv.includes('--keep');
  runDockerSteps(projectRoot, console.log, keep).then(
    (result) => {
      if (!result.healthy) console.error(`server log:\n${result.serverLog}`);
      const operator = result.operatorCommand;
      console.log(`operator command in the image: exit ${operator?.code ?? 'not run'}\n${operator?.output ?? ''}`);
      if (keep) console.log(`kept ${result.workDirectory}`);
      process.exitCode = result.healthy && operator?.code === 0 ? 0 : 1;
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exitCode = 1;
    },
  );
}
