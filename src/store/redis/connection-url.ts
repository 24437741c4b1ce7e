// Reads a Redis URL into what ioredis needs. Three deployments, three schemes:
//   redis://[[user]:password@]host[:port][/db]     standalone (rediss:// for TLS)
//   redis+sentinel://[[user]:password@]host:port[,host:port...]/masterName[?db=N]
//   redis+cluster://[[user]:password@]host:port[,host:port...]
// The password is for the data nodes (master and replicas, or cluster nodes);
// Sentinels themselves are reached without one.
//
// Parsed by hand because WHATWG URL refuses comma-separated host lists. Error
// messages name the part at fault and never repeat the URL: it may hold a
// password. A master name or parameter cannot contain "@".

export interface RedisAddress {
  host: string;
  port: number;
}

interface Credentials {
  username?: string;
  password?: string;
}

export type RedisTarget =
  | ({ kind: 'standalone'; address: RedisAddress; db: number; tls: boolean } & Credentials)
  | ({ kind: 'sentinel'; sentinels: RedisAddress[]; masterName: string; db: number } & Credentials)
  | ({ kind: 'cluster'; nodes: RedisAddress[] } & Credentials);

export class RedisUrlError extends Error {
  constructor(problem: string) {
    super(`invalid Redis URL: ${problem}`);
    this.name = 'RedisUrlError';
  }
}

const DEFAULT_PORT = 6379;
const DEFAULT_SENTINEL_PORT = 26379;
const SCHEMES = ['redis', 'rediss', 'redis+sentinel', 'redis+cluster'] as const;
type Scheme = (typeof SCHEMES)[number];

export function parseRedisUrl(url: string): RedisTarget {
  const schemeEnd = url.indexOf('://');
  if (schemeEnd < 0) throw new RedisUrlError(`it must start with one of ${SCHEMES.map((s) => `${s}://`).join(', ')}`);
  const scheme = url.slice(0, schemeEnd).toLowerCase();
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    throw new RedisUrlError(
      `unknown scheme "${scheme.slice(0, 20)}"; use one of ${SCHEMES.map((s) => `${s}://`).join(', ')}`,
    );
  }
  const rest = url.slice(schemeEnd + 3);
  // The last @ anywhere ends the credentials, so a password holding an
  // unescaped / ? @ or : is still taken whole and never shown in an error.
  const at = rest.lastIndexOf('@');
  const credentials = at < 0 ? {} : parseCredentials(rest.slice(0, at));
  const location = at < 0 ? rest : rest.slice(at + 1);
  const queryStart = location.indexOf('?');
  const beforeQuery = queryStart < 0 ? location : location.slice(0, queryStart);
  const query = new URLSearchParams(queryStart < 0 ? '' : location.slice(queryStart + 1));
  const pathStart = beforeQuery.indexOf('/');
  const hostList = pathStart < 0 ? beforeQuery : beforeQuery.slice(0, pathStart);
  const path = pathStart < 0 ? '' : beforeQuery.slice(pathStart + 1);

  switch (scheme as Scheme) {
    case 'redis':
    case 'rediss': {
      const addresses = parseHostList(hostList, DEFAULT_PORT);
      if (addresses.length !== 1) {
        throw new RedisUrlError(`${scheme}:// takes one host; use redis+sentinel:// or redis+cluster:// for several`);
      }
      rejectUnknownParameters(query, []);
      return {
        kind: 'standalone',
        address: addresses[0] as RedisAddress,
        db: path === '' ? 0 : parseDb(path, 'the path'),
        tls: scheme === 'rediss',
        ...credentials,
      };
    }
    case 'redis+sentinel': {
      const sentinels = parseHostList(hostList, DEFAULT_SENTINEL_PORT);
      const masterName = decodePart(path, 'the master name');
      if (masterName === '') throw new RedisUrlError('redis+sentinel:// needs the master name as its path (…/mymaster)');
      if (masterName.includes('/')) throw new RedisUrlError('the master name must not contain "/"');
      rejectUnknownParameters(query, ['db']);
      const db = query.get('db');
      return {
        kind: 'sentinel',
        sentinels,
        masterName,
        db: db === null ? 0 : parseDb(db, 'the db parameter'),
        ...credentials,
      };
    }
    case 'redis+cluster': {
      const nodes = parseHostList(hostList, DEFAULT_PORT);
      if (path !== '') throw new RedisUrlError('redis+cluster:// takes no path: a cluster has only database 0');
      rejectUnknownParameters(query, []);
      return { kind: 'cluster', nodes, ...credentials };
    }
  }
}

function parseCredentials(userInfo: string): Credentials {
  const colon = userInfo.indexOf(':');
  const username = decodePart(colon < 0 ? userInfo : userInfo.slice(0, colon), 'the user name');
  if (colon < 0) {
    // ioredis reads a lone "redis://secret@host" as a password; so do we.
    return userInfo === '' ? {} : { password: username };
  }
  const password = decodePart(userInfo.slice(colon + 1), 'the password');
  return {
    ...(username === '' ? {} : { username }),
    ...(password === '' ? {} : { password }),
  };
}

function decodePart(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    // The text itself is not shown: it may be the password.
    throw new RedisUrlError(`${what} has a malformed %-escape`);
  }
}

function parseHostList(hostList: string, defaultPort: number): RedisAddress[] {
  if (hostList === '') throw new RedisUrlError('no host given');
  return hostList.split(',').map((entry, index) => {
    const where = hostList.includes(',') ? `host ${index + 1} ("${entry}")` : `host "${entry}"`;
    let host: string;
    let portText: string | undefined;
    if (entry.startsWith('[')) {
      const close = entry.indexOf(']');
      if (close < 0) throw new RedisUrlError(`${where}: IPv6 address lacks its closing "]"`);
      host = entry.slice(1, close);
      const after = entry.slice(close + 1);
      if (after !== '' && !after.startsWith(':')) throw new RedisUrlError(`${where}: expected ":port" after "]"`);
      portText = after === '' ? undefined : after.slice(1);
    } else {
      const colon = entry.lastIndexOf(':');
      host = colon < 0 ? entry : entry.slice(0, colon);
      portText = colon < 0 ? undefined : entry.slice(colon + 1);
      if (host.includes(':')) throw new RedisUrlError(`${where}: put an IPv6 address in brackets, [::1]:6379`);
    }
    if (host === '') throw new RedisUrlError(`${where}: the host name is empty`);
    if (!/^[A-Za-z0-9._:%-]+$/.test(host)) throw new RedisUrlError(`${where}: the host name has characters not allowed`);
    return { host, port: portText === undefined ? defaultPort : parsePort(portText, where) };
  });
}

function parsePort(text: string, where: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= 65_535)) throw new RedisUrlError(`${where}: the port must be a number from 1 to 65535`);
  return port;
}

function parseDb(text: string, where: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new RedisUrlError(`${where} must be a database number (0, 1, …)`);
  return Number(text);
}

function rejectUnknownParameters(query: URLSearchParams, allowed: string[]): void {
  for (const name of query.keys()) {
    if (!allowed.includes(name)) {
      const accepted = allowed.length === 0 ? 'this scheme takes none' : `accepted: ${allowed.join(', ')}`;
      throw new RedisUrlError(`unknown parameter "${name.slice(0, 40)}" (${accepted})`);
    }
  }
}
