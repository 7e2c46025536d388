import { startEmbeddedPostgres, type EmbeddedPostgresOptions } from '../db/embedded-postgres';
import { stderrLogger } from './log';

/**
 * Child process of the operator CLI that runs the embedded PostgreSQL (see startEmbeddedInBackground).
 * It is started detached, in a session of its own, so that Ctrl-C on the operator's terminal
 * (meant for psql, or to stop a command) never reaches the server's processes: PostgreSQL
 * takes SIGINT as "shut down now". It stops the server when told to, or when the CLI is gone.
 *
 * Protocol over the IPC channel: it sends { url } once the server answers, or { error };
 * it stops the server and exits on "stop" or when the channel closes.
 */
async function serve(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '') as EmbeddedPostgresOptions;
  const running = await startEmbeddedPostgres(options, stderrLogger());
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    running.stop().finally(() => process.exit(0));
  };
  process.on('disconnect', stop);
  process.on('message', (message) => {
    if (message === 'stop') stop();
  });
  process.send?.({ url: running.url });
}

serve().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  if (process.send) process.send({ error: message }, () => process.exit(1));
  else process.exit(1);
});
