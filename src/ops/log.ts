import pino from 'pino';
import type { Logger } from '../logger';

/** Messages of the libraries the CLI calls (embedded PostgreSQL): plain warning lines on stderr. */
export function stderrLogger(): Logger {
  return pino(
    { level: 'warn', base: undefined },
    {
      write(line: string) {
        try {
          const entry = JSON.parse(line) as { msg?: string; err?: { message?: string } };
          process.stderr.write(`${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message}` : ''}\n`);
        } catch {
          process.stderr.write(line);
        }
      },
    },
  );
}
