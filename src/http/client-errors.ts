import { STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HeadersTooLargeError, MalformedRequestError, PayloadTooLargeError, RequestTimeoutError } from './http-errors';
import { type AppError } from '../errors';
import type { Logger } from '../logger';

/** How long an answered connection stays half-open so the client can read the answer. */
const LINGER_MS = 1_000;

/** Node's parser errors carry llhttp's code (HPE_*) and `rawPacket`, the bytes it choked on. */
type ClientError = Error & { code?: string };

function toAppError(code: string | undefined): AppError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HeadersTooLargeError('The request headers are larger than the server accepts');
    // Node itself answers 413 to this one; keep the status.
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new PayloadTooLargeError('The chunk extensions of the request body are too large');
    // Node 20 reports headersTimeout and requestTimeout as ERR_HTTP_REQUEST_TIMEOUT; older Nodes said HPE_HEADERS_TIMEOUT.
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return new RequestTimeoutError('The request did not arrive in time');
    default:
      return new MalformedRequestError('The request is not valid HTTP/1.1');
  }
}

/**
 * Requests Node's HTTP parser refuses (bad Content-Length or chunked encoding, invalid header
 * characters, headers over 16 kB, timeouts) never reach Express; Node would answer them with a bare
 * status line. This answers them in the service's error shape instead.
 */
export function answerClientErrorsWithJson(server: Server, logger: Logger): void {
  // The parser reports each further chunk of a refused request again: answer once.
  const answered = new WeakSet<Duplex>();
  server.on('clientError', (err: ClientError, socket: Duplex) => {
    if (answered.has(socket) || socket.destroyed) return;
    const pending = pendingResponse(socket);
    // The answer to this very request has started: a second status line would corrupt it.
    const answerStarted = pending !== undefined && !pending.req.complete && pending.headersSent;
    if (err.code === 'ECONNRESET' || !socket.writable || answerStarted) {
      logger.debug({ code: err.code }, 'client connection dropped');
      socket.destroy();
      return;
    }
    answered.add(socket);

    const error = toAppError(err.code);
    // Never `err` itself: its rawPacket holds the request bytes, credentials included.
    logger.warn(
      { code: err.code, reason: err.message, status: error.status, remoteAddress: (socket as Socket).remoteAddress },
      'malformed HTTP request refused',
    );
    const body = JSON.stringify({ success: false, error: { code: error.code, message: error.message } });
    sendLast(
      socket,
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  });
}

/** The response Node is writing on this connection, if any (its internal `_httpMessage`). */
function pendingResponse(socket: Duplex): ServerResponse | undefined {
  return (socket as { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/** Writes `response` after the answers to earlier, pipelined requests, then closes the connection. */
function sendLast(socket: Duplex, response: string): void {
  const earlier = pendingResponse(socket);
  if (earlier?.req.complete) {
    // Node attaches the next queued response before this listener runs.
    earlier.once('finish', () => sendLast(socket, response));
    return;
  }
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(response);
  // Destroying at once would reset the connection while request bytes are still unread,
  // and a client can lose the answer to that reset.
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
