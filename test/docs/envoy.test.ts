// docs/envoy.md names header and context_extensions keys that Envoy
// configurations copy; they must be the ones the code uses.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Authorization } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { CONTEXT_EXTENSIONS, INTERNAL_JWT_TYPE, UPSTREAM_HEADERS } from '../../src/transport/grpc/ext-authz.js';

const page = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'envoy.md'), 'utf8');

describe('docs/envoy.md', () => {
  it.each([...Object.values(UPSTREAM_HEADERS), ...Object.values(CONTEXT_EXTENSIONS), INTERNAL_JWT_TYPE, Authorization.typeName, 'TALLY_PHANTOM_TOKEN_TTL'])(
    'names %s as the code does',
    (name) => {
      expect(page).toContain(`\`${name}\``);
    },
  );

  it('sets every context_extensions key in its example configuration', () => {
    const yaml = /```yaml\n([\s\S]*?)```/.exec(page)?.[1] ?? '';
    for (const key of Object.values(CONTEXT_EXTENSIONS)) expect(yaml).toMatch(new RegExp(`^\\s+${key}: `, 'm'));
    expect(yaml).toContain('transport_api_version: V3');
    expect(yaml).toContain(`service_name: ${Authorization.typeName}`);
  });
});
