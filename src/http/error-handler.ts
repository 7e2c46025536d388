import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, NotFoundError, ValidationError } from '../errors';
import { MalformedJsonError, PayloadTooLargeError, UnsupportedMediaTypeError } from './http-errors';

/** body-parser marks its errors with a `type`. */
function fromBodyParser(error: { type?: unknown; limit?: unknown; status?: unknown }): AppError | undefined {
  switch (error.type) {
    case 'entity.parse.failed':
      return new MalformedJsonError('The request body is not valid JSON');
    case 'entity.too.large':
      return new PayloadTooLargeError(`The request body is larger than ${String(error.limit)} bytes`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new UnsupportedMediaTypeError('The request body must be UTF-8 encoded JSON');
    default:
      // E.g. a body that does not decompress as its content-encoding says, or an aborted upload.
      return typeof error.status === 'number' && error.status >= 400 && error.status < 500
        ? new MalformedJsonError('The request body could not be read')
        : undefined;
  }
}

function toAppError(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  // The router could not decode a path parameter.
  if (error instanceof URIError) {
    return new ValidationError('Invalid path parameters', [{ field: 'path parameters', message: 'is not valid percent-encoding' }]);
  }
  if (typeof error === 'object' && error !== null) return fromBodyParser(error);
  return undefined;
}

/** Requests with a body must send it as JSON. */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (!hasBody) return next();
  if (!req.is('application/json')) return next(new UnsupportedMediaTypeError('Send the body as application/json'));
  // body-parser would decode any utf-* charset; the contract is UTF-8.
  const charset = /;\s*charset="?([^";]+)"?/i.exec(req.headers['content-type'] ?? '')?.[1]?.trim().toLowerCase();
  next(charset && charset !== 'utf-8' ? new UnsupportedMediaTypeError('The request body must be UTF-8 encoded JSON') : undefined);
};

export const unknownRoute: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`No route for ${req.method} ${req.path}`));
};

/** The one place errors become responses; anything unexpected is logged and answered 500 without internals. */
export const errorHandler: ErrorRequestHandler = (error, req, res, next) => {
  if (res.headersSent) {
    next(error);
    return;
  }
  const appError = toAppError(error);
  if (!appError) {
    req.log.error({ err: error }, 'request failed');
    res.status(500).json({ success: false, error: { code: 'INTERNAL_ERROR', message: 'Internal server error' } });
    return;
  }
  if (appError.status >= 500) req.log.warn({ err: error }, appError.message);
  res.status(appError.status).json({
    success: false,
    error: {
      code: appError.code,
      message: appError.message,
      ...(appError.details === undefined ? {} : { details: appError.details }),
      ...appError.extra(),
    },
  });
};
