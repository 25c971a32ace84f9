import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { type LoggerService, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { ApiModule } from './api.module.js';
import { answerBodyErrors } from './body-errors.js';
import type { ApiSettings } from './settings.js';

export interface CreateApiOptions {
  /** Nest's logger: false silences it (tests), a list keeps those levels. Default Nest's console logger. */
  logger?: LoggerService | LogLevel[] | false;
}

/**
 * The API, set up but not listening: the caller decides on shutdown hooks and the port (main.ts, tests).
 * JSON bodies up to MAX_BODY_BYTES; while the app closes, new requests are answered 503.
 */
export async function createApi(
  settings: ApiSettings,
  { logger }: CreateApiOptions = {},
): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(ApiModule.forRoot(settings), {
    bodyParser: false,
    return503OnClosing: true,
    ...(logger === undefined ? {} : { logger }),
  });
  app.disable('x-powered-by');
  app.useBodyParser('json', { limit: settings.MAX_BODY_BYTES });
  app.use(answerBodyErrors);
  app.use(endConnectionOnceClosed(app.getHttpServer()));
  return app;
}

/**
 * Ends a keep-alive connection after its response once the server is closing: `server.close()` ends only the
 * connections idle at that moment, so one busy with a request then would hold the shutdown open for another
 * keepAliveTimeout (5 s) after its answer.
 */
function endConnectionOnceClosed(server: Server) {
  return (request: IncomingMessage, response: ServerResponse, next: () => void) => {
    response.once('finish', () => {
      if (!server.listening) request.socket.end();
    });
    next();
  };
}

/** A listening API and the URL it answers on. */
export interface RunningApi {
  app: NestExpressApplication;
  port: number;
  url: string;
}

/** Creates the API and listens on HTTP_PORT (0: a free port) of `host` (default every interface). */
export async function startApi(
  settings: ApiSettings,
  { host, ...options }: CreateApiOptions & { host?: string } = {},
): Promise<RunningApi> {
  const app = await createApi(settings, options);
  await (host === undefined ? app.listen(settings.HTTP_PORT) : app.listen(settings.HTTP_PORT, host));
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : settings.HTTP_PORT;
  return { app, port, url: `http://${host ?? '127.0.0.1'}:${port}` };
}
