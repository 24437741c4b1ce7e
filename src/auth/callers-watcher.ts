// Keeps the caller directory in step with the callers file. The file is
// polled rather than watched with inotify, because configuration mounts
// (Kubernetes ConfigMaps and Secrets) replace it through a symlink swap that
// inotify watchers on the old file never see. A file that stops parsing
// leaves the last good directory in force, and says why. So does a file that
// now lists no callers at all: a running Tally never drops into protected
// mode (every loopback client served with every permission) because a file
// was emptied by mistake or by an attacker, unless the operator allowed it.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { CallersFileError, NO_CALLERS, parseCallers, type CallerDirectory } from './callers.js';

export interface CallersWatcherOptions {
  /** Unset: no callers file, so no callers (protected mode decides). */
  path?: string;
  pollIntervalMs: number;
  /** Whether a reload may go from some callers to none (TALLY_CALLERS_ALLOW_EMPTY). */
  allowEmptying: boolean;
  onReload: (directory: CallerDirectory) => void;
  onError: (error: Error) => void;
}

export interface CallersWatcher {
  current(): CallerDirectory;
  close(): void;
}

/** Reads the file once (throwing if it is bad, so start-up fails) and then follows it. */
export function watchCallers(options: CallersWatcherOptions): CallersWatcher {
  const { path } = options;
  if (path === undefined) return { current: () => NO_CALLERS, close: () => {} };
  let directory = parseCallers(readFileSync(path, 'utf8'));
  const listener = () => {
    try {
      const next = parseCallers(readFileSync(path, 'utf8'));
      if (next.callers.length === 0 && directory.callers.length > 0 && !options.allowEmptying) {
        throw new CallersFileError(
          'it now lists no callers, which would open protected mode; set TALLY_CALLERS_ALLOW_EMPTY=yes to allow that, or restart Tally',
        );
      }
      directory = next;
      options.onReload(directory);
    } catch (error) {
      options.onError(error as Error);
    }
  };
  watchFile(path, { interval: options.pollIntervalMs, persistent: false }, listener);
  return {
    current: () => directory,
    close: () => unwatchFile(path, listener),
  };
}
