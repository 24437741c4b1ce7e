// Errors the core raises, each with a stable code. transport/call/errors.ts is the
// only place that turns them into gRPC or HTTP statuses. Messages are fixed
// texts that never carry a token or a secret.

export type TallyErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_KEY_RING'
  | 'ERR_UNAUTHENTICATED'
  | 'ERR_PERMISSION_DENIED'
  | 'ERR_RESOURCE_EXHAUSTED'
  | 'ERR_FAILED_PRECONDITION';

export class TallyError extends Error {
  readonly code: TallyErrorCode;

  constructor(code: TallyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The request is wrong; the message names the field at fault. */
export class InvalidArgumentError extends TallyError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('ERR_INVALID_ARGUMENT', `${field}: ${message}`);
    this.field = field;
  }
}

/** The store did not answer (in time). The cause is kept for the log only. */
export class StoreUnavailableError extends TallyError {
  constructor(message = 'the token store is unavailable', options?: { cause?: unknown }) {
    super('ERR_STORE_UNAVAILABLE', message, options);
  }
}

/** The key ring cannot be used: not loaded, or sealed under another master secret. */
export class KeyRingError extends TallyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_KEY_RING', message, options);
  }
}

export class UnauthenticatedError extends TallyError {
  constructor(message = 'a valid caller credential is required') {
    super('ERR_UNAUTHENTICATED', message);
  }
}

export class PermissionDeniedError extends TallyError {
  constructor(message: string) {
    super('ERR_PERMISSION_DENIED', message);
  }
}

export class ResourceExhaustedError extends TallyError {
  constructor(message: string) {
    super('ERR_RESOURCE_EXHAUSTED', message);
  }
}

/** The request is well formed but the system is not in a state to do it (an algorithm with no active key). */
export class FailedPreconditionError extends TallyError {
  constructor(message: string) {
    super('ERR_FAILED_PRECONDITION', message);
  }
}
