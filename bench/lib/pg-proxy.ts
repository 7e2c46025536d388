import net from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that counts what clients send, to measure database round
 * trips per HTTP request. A round trip is a simple query ('Q') or the Sync ('S') that ends an
 * extended-protocol exchange (Parse/Bind/Describe/Execute, as node-postgres sends a parameterised
 * query): the client then waits for the server's ReadyForQuery before it can go on.
 *
 * Only for the short, sequential round-trip measurement: relaying every byte through this process
 * would distort the throughput runs.
 */
export class PgMessageCounter {
  readonly counts = new Map<string, number>();
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(upstream: { host: string; port: number }): Promise<PgMessageCounter> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const counter = new PgMessageCounter(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (client) => counter.relay(client, upstream));
    return counter;
  }

  /** Round trips counted since the last reset. */
  roundTrips(): number {
    return (this.counts.get('Q') ?? 0) + (this.counts.get('S') ?? 0);
  }

  /** Statements sent: simple queries plus Execute messages. */
  statements(): number {
    return (this.counts.get('Q') ?? 0) + (this.counts.get('E') ?? 0);
  }

  reset(): void {
    this.counts.clear();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket, upstream: { host: string; port: number }): void {
    const server = net.connect(upstream.port, upstream.host);
    for (const socket of [client, server]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        server.destroy();
      });
    }
    client.pipe(server);
    server.pipe(client);

    // Frontend stream: untyped start-up packets (SSLRequest, GSSENCRequest, StartupMessage) until
    // the StartupMessage, then typed messages: 1 byte type, 4 bytes length (including itself).
    let buffered: Buffer = Buffer.alloc(0);
    let startingUp = true;
    client.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      for (;;) {
        if (startingUp) {
          if (buffered.length < 8) break;
          const length = buffered.readInt32BE(0);
          if (buffered.length < length) break;
          const code = buffered.readInt32BE(4);
          // 80877103 SSLRequest, 80877104 GSSENCRequest: another start-up packet follows.
          if (code !== 80877103 && code !== 80877104) startingUp = false;
          buffered = buffered.subarray(length);
          continue;
        }
        if (buffered.length < 5) break;
        const length = buffered.readInt32BE(1);
        if (buffered.length < 1 + length) break;
        const type = String.fromCharCode(buffered[0] ?? 0);
        this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
        buffered = buffered.subarray(1 + length);
      }
    });
  }
}
