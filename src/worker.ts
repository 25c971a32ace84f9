import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppModule } from './app.module.js';
import type { AuditTrail } from './audit/audit-trail.js';
import { WorkerAuditTrail } from './audit/audit.module.js';
import { PurchaseTransport } from './broker/purchase.transport.js';
import type { Settings } from './config/settings.js';
import { WorkerLifecycle } from './worker.lifecycle.js';

export interface RunningWorker {
  app: INestApplication;
  port: number;
  transport: PurchaseTransport;
  audit: AuditTrail;
  /** Graceful shutdown; resolves with the exit code (0: drained in time). */
  stop(signal?: string): Promise<number>;
}

/** Starts one worker: the HTTP side (health, metrics) and the purchase consumer. */
export async function startWorker(settings: Settings): Promise<RunningWorker> {
  const app = await NestFactory.create(AppModule.forRoot(settings), { bufferLogs: true });
  const logger = app.get(Logger);
  app.useLogger(logger);
  const transport = app.get(PurchaseTransport);
  app.connectMicroservice({ strategy: transport }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  await app.listen(settings.HTTP_PORT, '0.0.0.0');
  const server = app.getHttpServer() as Server;
  const port = (server.address() as AddressInfo).port;
  logger.log({ msg: 'http listening', port });
  let stopping: Promise<number> | undefined;
  return {
    app,
    port,
    transport,
    audit: app.get(WorkerAuditTrail),
    stop: (signal) => {
      stopping ??= (async () => {
        const lifecycle = app.get(WorkerLifecycle);
        await lifecycle.beforeApplicationShutdown(signal);
        await app.close();
        return lifecycle.exitCode;
      })();
      return stopping;
    },
  };
}
