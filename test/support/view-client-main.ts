// A service's process holding tally/client with its local view on, driven by
// the test over IPC (view-client-process.ts), so tests can kill it, freeze it
// or cut it off like any real client. Every introspect goes through the
// client as a service would call it; the answers, and the view's state, go
// back to the test.
import { Code, ConnectError, createTallyClient } from '../../src/client/index.js';

interface Request {
  id: number;
  op: 'introspect' | 'state' | 'close';
  token?: string;
}

const { TALLY_VIEW_CLIENT_URL: baseUrl = '', TALLY_VIEW_CLIENT_API_KEY: apiKey, TALLY_VIEW_CLIENT_TIMEOUT_MS: timeout = '1000' } = process.env;
let breaks = 0;
const client = createTallyClient({
  baseUrl,
  apiKey: apiKey === '' ? undefined : apiKey,
  timeoutMs: Number(timeout),
  // Fail fast: the test judges what one call answers.
  retry: { maxAttempts: 1 },
  localView: { maxEntries: 10_000, onChange: (change) => !change.watching && breaks++ },
});

process.on('message', (message: Request) => {
  const reply = (body: Record<string, unknown>) => process.send!({ id: message.id, ...body });
  switch (message.op) {
    case 'introspect':
      client.introspect({ token: message.token ?? '' }).then(
        (answer) => reply({ active: answer.active }),
        (error: unknown) => reply({ active: false, code: Code[ConnectError.from(error).code] }),
      );
      return;
    case 'state':
      reply({ fresh: client.localView.fresh(), size: client.localView.size, breaks, ...client.localView.stats() });
      return;
    case 'close':
      void client.localView.close().then(() => {
        reply({});
        process.disconnect?.();
      });
  }
});
process.send!({ id: 0, ready: true });
