// The errors the SDK throws. Any error thrown by a plugin fails the call with
// its message (see export.ts); these classes let a plugin tell them apart.

/** A misuse of the SDK or a malformed value, with a message naming it. */
export class KubewasmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubewasmError';
  }
}

/**
 * A settings document that does not fit the plugin's schema. `field` is the
 * JSON path of the offending value (`settings.requiredKeys[1]`), `problem`
 * what is wrong with it; the message is `field: problem`.
 */
export class SettingsError extends KubewasmError {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'SettingsError';
  }
}

/** A cache read the host refused (a kind outside the plugin's scope). */
export class HostError extends KubewasmError {
  constructor(message: string) {
    super(message);
    this.name = 'HostError';
  }
}

/** The message a failed call reports for `e`, whatever was thrown. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  if (typeof e === 'string') return e;
  if (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string') {
    return (e as { message: string }).message;
  }
  return String(e);
}
