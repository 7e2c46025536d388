/** Raised at start-up; the message names the offending setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
