// A test host of our own: a network namespace joined to this machine by a
// veth pair on a /30 of 198.18.0.0/15 (the range RFC 2544 sets aside for
// testing). Calls made inside it reach Tally from a non-loopback address,
// which is what protected mode must refuse. Needs root and iproute2, as the
// CI machine has; nothing leaves the machine.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface NetworkNamespace {
  name: string;
  /** This machine's address on the link, which the namespace can reach. */
  hostAddress: string;
  /** The namespace's own address, which Tally sees as the peer. */
  address: string;
  /** Runs a command inside the namespace; resolves with its stdout (rejects on a non-zero exit). */
  exec(command: string, args: string[]): Promise<string>;
  remove(): Promise<void>;
}

export async function createNetworkNamespace(): Promise<NetworkNamespace> {
  const id = process.pid % 16_000;
  const name = `tally-test-${process.pid}`;
  const hostLink = `tth${id}`;
  const namespaceLink = `ttn${id}`;
  // One /30 per process id, so test runs side by side do not collide.
  const base = 4 * id;
  const subnet = `198.${18 + Math.floor(base / 65_536)}.${Math.floor(base / 256) % 256}`;
  const hostAddress = `${subnet}.${(base % 256) + 1}`;
  const address = `${subnet}.${(base % 256) + 2}`;
  const ip = (...args: string[]) => run('ip', args);
  await ip('netns', 'add', name);
  try {
    await ip('link', 'add', hostLink, 'type', 'veth', 'peer', 'name', namespaceLink);
    await ip('link', 'set', namespaceLink, 'netns', name);
    await ip('addr', 'add', `${hostAddress}/30`, 'dev', hostLink);
    await ip('link', 'set', hostLink, 'up');
    await ip('netns', 'exec', name, 'ip', 'addr', 'add', `${address}/30`, 'dev', namespaceLink);
    await ip('netns', 'exec', name, 'ip', 'link', 'set', namespaceLink, 'up');
    await ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (error) {
    await ip('netns', 'del', name).catch(() => {});
    await ip('link', 'del', hostLink).catch(() => {});
    throw error;
  }
  return {
    name,
    hostAddress,
    address,
    async exec(command, args) {
      const { stdout } = await run('ip', ['netns', 'exec', name, command, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' } });
      return stdout;
    },
    async remove() {
      // Deleting the namespace deletes the veth pair with it.
      await ip('netns', 'del', name).catch(() => {});
      await ip('link', 'del', hostLink).catch(() => {});
    },
  };
}
