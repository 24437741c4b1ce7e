// The process: settings from the environment, Tally built and started by
// app.ts, and the way back down on SIGTERM or SIGINT. Nothing imports it.

import { ConfigError, loadConfig, renderHelp, renderSettingsTable, type Config } from './config.js';
import { startTally, stopTally, type RunningTally } from './app.js';
import { createLogger, type Logger } from './log.js';
import { readTracingSettings, type TracingSettings } from './transport/telemetry/tracing-settings.js';

function exit(logger: Logger | undefined, code: number): never {
  logger?.flush();
  process.exit(code);
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(renderHelp());
    return;
  }
  if (argv.includes('--settings-table')) {
    process.stdout.write(renderSettingsTable());
    return;
  }
  if (argv.length > 0) {
    process.stderr.write(`unknown argument ${JSON.stringify(argv[0])}; settings are TALLY_* environment variables (see --help)\n`);
    process.exit(2);
  }

  let config: Config;
  let tracing: TracingSettings | undefined;
  try {
    config = loadConfig(process.env);
    tracing = readTracingSettings(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`tally: ${error.message}\n`);
    process.exit(1);
  }
  const logger = createLogger({ level: config.logLevel });

  // Handlers catch everything a request can cause, so reaching here is a bug:
  // logged, and the process drains rather than dying mid-call.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

  let running: RunningTally;
  try {
    running = await startTally(config, { logger, tracing });
  } catch (error) {
    logger.fatal({ err: error }, 'start-up failed');
    exit(logger, 1);
  }

  let stopping: Promise<number> | undefined;
  const shutdown = (reason: string, code: number) => {
    if (stopping !== undefined) {
      logger.warn({ reason }, 'stopping at once: asked again while draining');
      exit(logger, 1);
    }
    logger.info({ reason, timeout_ms: config.shutdownTimeoutMs }, 'draining');
    // The last word if a step hangs: never outlive the timeout by much.
    setTimeout(() => {
      logger.error('shutdown did not finish in time; exiting');
      exit(logger, 1);
    }, config.shutdownTimeoutMs + 1_000).unref();
    stopping = stopTally(running, config.shutdownTimeoutMs).then(
      ({ grpcClean, httpClean, storeClosed }) => exit(logger, grpcClean && httpClean && storeClosed ? code : 1),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        return exit(logger, 1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM', 0));
  process.on('SIGINT', () => shutdown('SIGINT', 0));
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception');
    shutdown('uncaught exception', 1);
  });

  running.started.catch((error: unknown) => {
    if (stopping !== undefined) return;
    logger.fatal({ err: error }, 'the token service cannot start');
    shutdown('start-up failed', 1);
  });
}

await main(process.argv.slice(2));
