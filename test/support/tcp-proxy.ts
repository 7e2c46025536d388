import { once } from 'node:events';
import net from 'node:net';

/**
 * - `up`: forwards both ways.
 * - `refuse`: the port is closed (new connections get ECONNREFUSED) and every open connection is
 *   cut: PostgreSQL crashed or is restarting.
 * - `blackhole`: connections are accepted but nothing is forwarded, on new and open connections
 *   alike, and nothing is closed: a network partition. Bytes sent meanwhile wait in the proxy, as
 *   in TCP buffers, and flow again when the mode goes back to `up` (the partition heals).
 */
export type ProxyMode = 'up' | 'refuse' | 'blackhole';

export interface ProxyTarget {
  host: string;
  port: number;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** The upstream side ended while blackholed: the client learns it when the partition heals. */
  upstreamClosed: boolean;
}

/** A TCP proxy on 127.0.0.1 whose failure mode a test switches (PostgreSQL by default). */
export class TcpProxy {
  private mode: ProxyMode = 'up';
  private server: net.Server;
  private readonly pairs = new Set<Pair>();
  private closed = false;
  private listeningPort = 0;

  private constructor(readonly target: ProxyTarget) {
    this.server = net.createServer();
  }

  /** The proxy's port on 127.0.0.1; it keeps it across `refuse` and back. */
  get port(): number {
    return this.listeningPort;
  }

  static async start(target: ProxyTarget = { host: '127.0.0.1', port: 5432 }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    await proxy.listen(0);
    return proxy;
  }

  /** A proxy to the server of `databaseUrl`, and that URL rewritten to go through it. */
  static async forDatabase(databaseUrl: string): Promise<{ proxy: TcpProxy; url: string }> {
    const parsed = new URL(databaseUrl);
    const proxy = await TcpProxy.start({ host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || 5432) });
    return { proxy, url: proxy.rewrite(databaseUrl) };
  }

  /** `url` with its host and port replaced by the proxy's. */
  rewrite(url: string): string {
    const rewritten = new URL(url);
    rewritten.hostname = '127.0.0.1';
    rewritten.port = String(this.port);
    return rewritten.toString();
  }

  get currentMode(): ProxyMode {
    return this.mode;
  }

  /** Connections currently held open (either side). */
  get openConnections(): number {
    return this.pairs.size;
  }

  async setMode(mode: ProxyMode): Promise<void> {
    if (this.closed) throw new Error('the proxy is closed');
    if (mode === this.mode) return;
    const previous = this.mode;
    this.mode = mode;
    if (mode === 'refuse') {
      for (const pair of this.pairs) this.cut(pair);
      await this.stopListening();
      return;
    }
    if (previous === 'refuse') await this.listen(this.port);
    if (mode === 'blackhole') for (const pair of this.pairs) this.hold(pair);
    else for (const pair of [...this.pairs]) this.forward(pair);
  }

  /** Cuts every connection and stops listening. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const pair of this.pairs) this.cut(pair);
    await this.stopListening();
  }

  private async listen(port: number): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    server.listen(port, '127.0.0.1');
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => Promise.reject(error))]);
    this.server = server;
    this.listeningPort = (server.address() as net.AddressInfo).port;
  }

  private async stopListening(): Promise<void> {
    if (!this.server.listening) return;
    const server = this.server;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.mode === 'refuse' || this.closed) {
      client.destroy();
      return;
    }
    client.pause();
    const upstream = net.connect(this.target.port, this.target.host);
    upstream.pause();
    const pair: Pair = { client, upstream, upstreamClosed: false };
    this.pairs.add(pair);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    // The client giving up always reaches the server side; the server side closing reaches the
    // client only when something is forwarded (a partition hides it).
    client.on('close', () => {
      upstream.destroy();
      this.pairs.delete(pair);
    });
    upstream.on('close', () => {
      pair.upstreamClosed = true;
      if (this.mode !== 'blackhole') {
        client.destroy();
        this.pairs.delete(pair);
      }
    });
    if (this.mode === 'up') this.forward(pair);
  }

  private forward(pair: Pair): void {
    if (pair.upstreamClosed) {
      pair.client.destroy();
      this.pairs.delete(pair);
      return;
    }
    // pipe() resumes the source; { end: true } carries a half-close across.
    pair.client.pipe(pair.upstream);
    pair.upstream.pipe(pair.client);
  }

  private hold(pair: Pair): void {
    pair.client.unpipe(pair.upstream);
    pair.upstream.unpipe(pair.client);
    pair.client.pause();
    pair.upstream.pause();
  }

  private cut(pair: Pair): void {
    pair.client.destroy();
    pair.upstream.destroy();
    this.pairs.delete(pair);
  }
}
