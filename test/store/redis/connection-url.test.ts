import { describe, expect, it } from 'vitest';
import { parseRedisUrl, RedisUrlError } from '../../../src/store/redis/connection-url.js';

describe('parseRedisUrl', () => {
  it.each([
    ['redis://127.0.0.1', { kind: 'standalone', address: { host: '127.0.0.1', port: 6379 }, db: 0, tls: false }],
    ['redis://cache.internal:6380/3', { kind: 'standalone', address: { host: 'cache.internal', port: 6380 }, db: 3, tls: false }],
    ['rediss://cache.internal', { kind: 'standalone', address: { host: 'cache.internal', port: 6379 }, db: 0, tls: true }],
    ['REDIS://h:1', { kind: 'standalone', address: { host: 'h', port: 1 }, db: 0, tls: false }],
    ['redis://[::1]:7000', { kind: 'standalone', address: { host: '::1', port: 7000 }, db: 0, tls: false }],
    ['redis://:s3cret@h', { kind: 'standalone', address: { host: 'h', port: 6379 }, db: 0, tls: false, password: 's3cret' }],
    ['redis://tally:s3cret@h', { kind: 'standalone', address: { host: 'h', port: 6379 }, db: 0, tls: false, username: 'tally', password: 's3cret' }],
    ['redis://s3cret@h', { kind: 'standalone', address: { host: 'h', port: 6379 }, db: 0, tls: false, password: 's3cret' }],
    ['redis://:p%40ss%3Aword@h', { kind: 'standalone', address: { host: 'h', port: 6379 }, db: 0, tls: false, password: 'p@ss:word' }],
    ['redis://:p/a?s@s@h/2', { kind: 'standalone', address: { host: 'h', port: 6379 }, db: 2, tls: false, password: 'p/a?s@s' }],
    [
      'redis+sentinel://:pw@s1:26379,s2,[::1]:26380/mymaster?db=2',
      {
        kind: 'sentinel',
        sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }, { host: '::1', port: 26380 }],
        masterName: 'mymaster',
        db: 2,
        password: 'pw',
      },
    ],
    ['redis+sentinel://s1:5000/main', { kind: 'sentinel', sentinels: [{ host: 's1', port: 5000 }], masterName: 'main', db: 0 }],
    [
      'redis+cluster://:pw@n1:7000,n2:7001,n3',
      { kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }, { host: 'n3', port: 6379 }], password: 'pw' },
    ],
  ])('reads %s', (url, expected) => {
    expect(parseRedisUrl(url)).toEqual(expected);
  });

  it.each([
    ['', /must start with one of redis:\/\//],
    ['127.0.0.1:6379', /must start with one of/],
    ['http://h', /unknown scheme "http"/],
    ['redis://', /no host given/],
    ['redis://:pw@', /no host given/],
    ['redis://h:0', /port must be a number from 1 to 65535/],
    ['redis://h:65536', /port must be a number from 1 to 65535/],
    ['redis://h:port', /port must be a number/],
    ['redis://h:', /port must be a number/],
    ['redis://h/x', /the path must be a database number/],
    ['redis://h/-1', /database number/],
    ['redis://a,b', /takes one host/],
    ['redis://h?db=1', /unknown parameter "db" \(this scheme takes none\)/],
    ['redis://::1', /IPv6 address in brackets/],
    ['redis://[::1', /closing "]"/],
    ['redis://h,,i', /host 2 \(""\): the host name is empty/],
    ['redis://bad host', /characters not allowed/],
    ['redis+sentinel://s1:26379', /needs the master name/],
    ['redis+sentinel://s1:26379/', /needs the master name/],
    ['redis+sentinel://s1,:1/m', /host 2 \(":1"\): the host name is empty/],
    ['redis+sentinel://s1/m?db=x', /db parameter must be a database number/],
    ['redis+sentinel://s1/m?role=slave', /unknown parameter "role" \(accepted: db\)/],
    ['redis+sentinel://s1/a/b', /must not contain "\/"/],
    ['redis+cluster://n1/0', /takes no path/],
    ['redis://:%zz@h', /the password has a malformed %-escape/],
  ])('refuses %j, saying what is wrong', (url, problem) => {
    expect(() => parseRedisUrl(url)).toThrow(RedisUrlError);
    expect(() => parseRedisUrl(url)).toThrow(problem);
  });

  it.each([
    'redis://:hunter2-secret@h:99999',
    'redis://user:hunter2-secret@',
    'redis://:hunter2-secret@h/notadb',
    'redis+sentinel://:hunter2-secret@s1',
    'redis+cluster://:hunter2-secret@n1/x',
    'redis://:hunter2-secret@h?x=1',
    'redis://:hunter2%zz-secret@h',
    'redis://:hunter2-secret/with-slash@h:0',
  ])('never repeats the password in its error for %j', (url) => {
    let message = '';
    try {
      parseRedisUrl(url);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toBe('');
    expect(message).not.toContain('hunter2');
  });
});
