import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';

describe('the root logger', () => {
  it('redacts token-bearing paths, whatever the caller passes', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
    logger.info({ token: 'tly_top', request: { token: 'tly_nested' }, headers: { authorization: 'Bearer tly_header' } }, 'hello');
    logger.info({ req: { headers: { authorization: 'Bearer tly_req' } }, masterKey: 'secret-key' }, 'again');
    const output = lines.join('');
    for (const secret of ['tly_top', 'tly_nested', 'tly_header', 'tly_req', 'secret-key']) expect(output).not.toContain(secret);
    expect(output).toContain('[redacted]');
  });
});
