// Starts view-client-main.ts as a child process: a service holding
// tally/client with its local view on, watching revocations through the given
// Tally address. Killed with the test process (and with --pdeathsig if the
// test worker dies first).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from './eventually.js';

const ROOT = join(import.meta.dirname, '..', '..');
const running = new Set<ChildProcess>();
process.once('exit', () => running.forEach((child) => child.kill('SIGKILL')));

export interface ViewClientState {
  fresh: boolean;
  size: number;
  hits: number;
  misses: number;
  /** Times the view stopped answering (the stream broke, the lease was lost). */
  breaks: number;
}

export interface ViewClientProcess {
  readonly pid: number;
  /** What the client's introspect answered; `code` when the call failed. */
  introspect(token: string): Promise<{ active: boolean; code?: string }>;
  state(): Promise<ViewClientState>;
  /** Resolves once the view answers from its cache. */
  untilFresh(withinMs?: number): Promise<void>;
  signal(name: NodeJS.Signals): void;
  /** Closes the view (releasing its lease) and ends the process; kills it if it does not answer. */
  stop(): Promise<void>;
}

export async function startViewClient(options: { url: string; apiKey?: string; timeoutMs?: number }): Promise<ViewClientProcess> {
  const command = [process.execPath, '--import', 'tsx', 'test/support/view-client-main.ts'];
  const withDeathSignal = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', ...command] : command;
  const child = spawn(withDeathSignal[0]!, withDeathSignal.slice(1), {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TALLY_VIEW_CLIENT_URL: options.url,
      TALLY_VIEW_CLIENT_API_KEY: options.apiKey ?? '',
      TALLY_VIEW_CLIENT_TIMEOUT_MS: String(options.timeoutMs ?? 1_000),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  running.add(child);
  const pending = new Map<number, (reply: Record<string, unknown>) => void>();
  let nextId = 1;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      for (const settle of pending.values()) settle({ exited: true });
      pending.clear();
      resolve();
    }),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (message: { id: number } & Record<string, unknown>) => {
      if (message.id === 0) resolve();
      pending.get(message.id)?.(message);
      pending.delete(message.id);
    });
    void exited.then(() => reject(new Error('the view client exited during start-up')));
  });
  await ready;

  const ask = (op: string, body: Record<string, unknown> = {}) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      if (!running.has(child)) return reject(new Error('the view client has exited'));
      const id = nextId++;
      pending.set(id, (reply) => (reply.exited === true ? reject(new Error('the view client exited')) : resolve(reply)));
      child.send({ id, op, ...body });
    });

  const state = async () => (await ask('state')) as unknown as ViewClientState;
  return {
    pid: child.pid!,
    async introspect(token) {
      const { active, code } = (await ask('introspect', { token })) as { active: boolean; code?: string };
      return code === undefined ? { active } : { active, code };
    },
    state,
    async untilFresh(withinMs = 10_000) {
      await eventually(async () => {
        if (!(await state()).fresh) throw new Error('the local view is not fresh');
      }, withinMs);
    },
    signal: (name) => child.kill(name),
    async stop() {
      if (!running.has(child)) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await ask('close').catch(() => child.kill('SIGKILL'));
      await exited;
      clearTimeout(timer);
    },
  };
}
