/** The command line itself is wrong: exit code 2, with the usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';

  constructor(
    message: string,
    /** Whose usage to print: a command's, or the general one. */
    readonly command?: string,
  ) {
    super(message);
  }
}

/**
 * A failure the operator can act on: one line on stderr, exit code 1; `detail` (for example
 * the Prisma CLI's own explanation) follows it when there is one.
 */
export class OpsError extends Error {
  override readonly name = 'OpsError';

  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}
