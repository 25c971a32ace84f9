import type { IncomingMessage, ServerResponse } from 'node:http';

/** What body-parser (through `http-errors`) puts on the errors it passes on. */
interface BodyParserError {
  type?: unknown;
  status?: unknown;
  limit?: unknown;
}

const REASONS: Record<string, (error: BodyParserError) => string> = {
  'entity.too.large': (error) => `body is over the limit of ${String(error.limit)} bytes`,
  'entity.parse.failed': () => 'body is not valid JSON',
  'encoding.unsupported': () => 'body encoding is not supported (send it as identity, gzip or deflate)',
  'charset.unsupported': () => 'body charset is not supported (send it as UTF-8)',
  'request.aborted': () => 'the request was aborted before its body arrived',
  'request.size.invalid': () => "the body's length differs from its Content-Length",
};

/**
 * Express error middleware right after the JSON body parser: a body refused before any route sees it is
 * answered in the API's JSON form (413 too large, 400 not JSON) instead of Express's HTML page, which would show
 * a stack trace outside production. Any other error goes on to the next handler.
 */
export function answerBodyErrors(
  error: unknown,
  _request: IncomingMessage,
  response: ServerResponse,
  next: (error: unknown) => void,
): void {
  const { type, status } = (typeof error === 'object' && error !== null ? error : {}) as BodyParserError;
  const reason = typeof type === 'string' ? REASONS[type] : undefined;
  if (!reason || typeof status !== 'number') {
    next(error);
    return;
  }
  const message = reason(error as BodyParserError);
  response.statusCode = status;
  response.setHeader('Content-Type', 'application/json; charset=utf-8');
  response.end(JSON.stringify({ statusCode: status, error: errorName(status), message }));
}

function errorName(status: number): string {
  return status === 413 ? 'Payload Too Large' : status === 415 ? 'Unsupported Media Type' : 'Bad Request';
}
