import pg from 'pg';
import type { Logger } from '../logger';

export interface Listener {
  close(): Promise<void>;
}

/** How long a lost LISTEN connection waits before it connects again. */
const RECONNECT_MS = 5_000;

/**
 * Calls `onNotify` for every NOTIFY on `channel`, on a connection of its own (LISTEN needs one
 * session; a pooled client cannot hold it). A lost connection is opened again after a pause;
 * meanwhile the caller's own polling is the fallback, so nothing is lost, only later.
 */
export async function listen(url: string, channel: string, onNotify: () => void, logger: Logger): Promise<Listener> {
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url });
    next.on('notification', () => onNotify());
    next.on('error', (error) => {
      logger.warn({ err: error, channel }, 'LISTEN connection lost; polling until it is back');
      void next.end().catch(() => undefined);
      scheduleReconnect();
    });
    await next.connect();
    await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    if (closed) {
      await next.end();
      return;
    }
    client = next;
  };
  const scheduleReconnect = () => {
    client = undefined;
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      connect().catch((error: unknown) => {
        logger.warn({ err: error, channel }, 'could not LISTEN again');
        scheduleReconnect();
      });
    }, RECONNECT_MS);
    retry.unref();
  };

  await connect();
  return {
    async close() {
      closed = true;
      clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
