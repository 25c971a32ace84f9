import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type CustomTransportStrategy, Server } from '@nestjs/microservices';
import { TerminusModule } from '@nestjs/terminus';
import { Logger as PinoLogger } from 'nestjs-pino';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AuditTrail, auditTrailOptions } from './audit/audit-trail.js';
import { AuditWriter } from './audit/audit.writer.js';
import { OutcomeReporter, outcomeReporterOptions } from './audit/outcome.reporter.js';
import { BrokerConnection } from './broker/broker-connection.js';
import { QueueDepthMonitor } from './broker/queue-depth.monitor.js';
import { ShutdownSignal } from './common/shutdown-signal.js';
import { SETTINGS, type Settings } from './config/settings.js';
import { CircuitBreaker, circuitBreakerOptions } from './database/circuit-breaker.js';
import { describeDatabaseFault } from './database/database-errors.js';
import { DurabilityMonitor } from './database/durability.monitor.js';
import { OrderWriter } from './database/order.writer.js';
import { PrismaService } from './database/prisma.service.js';
import { HealthController } from './health/health.controller.js';
import { ObservabilityModule } from './observability/observability.module.js';
import { WorkerMetrics } from './observability/worker-metrics.js';
import { PurchasePipeline } from './purchases/purchase.pipeline.js';
import type { Delivery } from './consumer/delivery.js';
import { consumerOptions, PurchaseConsumer } from './consumer/purchase-consumer.js';
import { DeadLetterPublisher } from './settlement/dead-letter.publisher.js';
import { MessageSettler, settlerOptions } from './settlement/message-settler.js';
import { ReplyOrderLookup } from './settlement/reply-order.lookup.js';
import { ReplyPublisher, replyPublisherOptions } from './settlement/reply.publisher.js';
import { Worker, WorkerParts } from './worker.js';

/** How often the worker reads again whether an acked order would survive the loss of the primary. */
const DURABILITY_CHECK_INTERVAL_MS = 60_000;

/**
 * Every part of the worker, registered one way: a factory that names what it takes and maps the settings to
 * the part's options. Nothing here is global; the parts know nothing of Nest, so they are built the same way
 * in unit tests. A delivery's path is wired here once: consumer → pipeline → settler, each given the next.
 */
@Module({})
export class WorkerModule {
  static forRoot(settings: Settings): DynamicModule {
    const frozen = Object.freeze({ ...settings });
    return {
      module: WorkerModule,
      imports: [ObservabilityModule.forRoot(frozen), TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController],
      providers: [
        { provide: SETTINGS, useValue: frozen },
        { provide: ShutdownSignal, useValue: new ShutdownSignal() },
        { provide: PrismaService, useFactory: () => new PrismaService(frozen) },
        {
          provide: OrderWriter,
          inject: [PrismaService],
          useFactory: (prisma: PrismaService) => new OrderWriter(prisma),
        },
        {
          provide: AuditWriter,
          inject: [PrismaService],
          useFactory: (prisma: PrismaService) => new AuditWriter(prisma),
        },
        {
          provide: CircuitBreaker,
          inject: [OrderWriter, ShutdownSignal],
          useFactory: (orders: OrderWriter, shutdown: ShutdownSignal) =>
            new CircuitBreaker(() => orders.checkWritable(), {
              ...circuitBreakerOptions(frozen),
              describe: describeDatabaseFault,
              signal: shutdown.signal,
            }),
        },
        {
          provide: AuditTrail,
          inject: [AuditWriter, WorkerMetrics],
          useFactory: (writer: AuditWriter, metrics: WorkerMetrics) =>
            new AuditTrail(writer, auditTrailOptions(frozen), metrics),
        },
        {
          provide: OutcomeReporter,
          inject: [AuditTrail, WorkerMetrics],
          useFactory: (audit: AuditTrail, metrics: WorkerMetrics) =>
            new OutcomeReporter(audit, metrics, outcomeReporterOptions(frozen)),
        },
        {
          provide: DeadLetterPublisher,
          inject: [BrokerConnection],
          useFactory: (broker: BrokerConnection) => {
            const deadLetters = new DeadLetterPublisher(
              broker,
              frozen.DEAD_LETTER_QUEUE,
              frozen.PURCHASE_QUEUE,
              frozen.WORKER_ID,
            );
            broker.onReturned((message) => deadLetters.onReturned(message));
            return deadLetters;
          },
        },
        {
          provide: ReplyPublisher,
          inject: [BrokerConnection, PrismaService, WorkerMetrics],
          useFactory: (broker: BrokerConnection, prisma: PrismaService, metrics: WorkerMetrics) =>
            new ReplyPublisher(broker, new ReplyOrderLookup(prisma), metrics, replyPublisherOptions(frozen)),
        },
        {
          provide: MessageSettler,
          inject: [DeadLetterPublisher, OutcomeReporter, ReplyPublisher, BrokerConnection, ShutdownSignal],
          useFactory: (
            deadLetters: DeadLetterPublisher,
            reporter: OutcomeReporter,
            replies: ReplyPublisher,
            broker: BrokerConnection,
            shutdown: ShutdownSignal,
          ) =>
            new MessageSettler(
              deadLetters,
              reporter,
              replies,
              broker,
              settlerOptions(frozen, shutdown.signal),
            ),
        },
        {
          provide: PurchasePipeline,
          inject: [OrderWriter, CircuitBreaker, WorkerMetrics, ShutdownSignal, MessageSettler],
          useFactory: (
            orders: OrderWriter,
            breaker: CircuitBreaker,
            metrics: WorkerMetrics,
            shutdown: ShutdownSignal,
            settler: MessageSettler,
          ) => new PurchasePipeline<Delivery>(frozen, orders, breaker, metrics, shutdown, settler),
        },
        {
          provide: PurchaseConsumer,
          inject: [BrokerConnection, PurchasePipeline, WorkerMetrics],
          useFactory: (
            broker: BrokerConnection,
            pipeline: PurchasePipeline<Delivery>,
            metrics: WorkerMetrics,
          ) => {
            const consumer = new PurchaseConsumer(
              broker,
              pipeline,
              {
                onPausedChange: (paused) => metrics.consumerState(paused),
                onAckFrame: () => metrics.ackFrameSent(),
              },
              consumerOptions(frozen),
            );
            metrics.watchInFlight(() => consumer.inFlight);
            return consumer;
          },
        },
        {
          provide: BrokerConnection,
          inject: [WorkerMetrics],
          useFactory: (metrics: WorkerMetrics) => new BrokerConnection(frozen, metrics),
        },
        {
          provide: QueueDepthMonitor,
          inject: [BrokerConnection, WorkerMetrics],
          useFactory: (broker: BrokerConnection, metrics: WorkerMetrics) =>
            new QueueDepthMonitor(broker, metrics, frozen),
        },
        {
          provide: DurabilityMonitor,
          inject: [PrismaService, WorkerMetrics],
          useFactory: (prisma: PrismaService, metrics: WorkerMetrics) =>
            new DurabilityMonitor(prisma, metrics, DURABILITY_CHECK_INTERVAL_MS),
        },
        WorkerParts,
        { provide: Worker, inject: [WorkerParts], useFactory: (parts: WorkerParts) => new Worker(parts) },
      ],
    };
  }
}

/**
 * How Nest hosts the worker (a custom transport strategy of @nestjs/microservices): `listen` starts it,
 * `close` closes it. Everything else is the Worker's.
 */
export class WorkerTransport extends Server implements CustomTransportStrategy {
  constructor(private readonly worker: Worker) {
    super();
  }

  listen(callback: (error?: unknown) => void): void {
    this.worker.start().then(
      () => callback(),
      (error: unknown) => callback(error),
    );
  }

  close(): Promise<void> {
    return this.worker.close();
  }

  on(): never {
    throw new Error('WorkerTransport does not emit events to listeners');
  }

  unwrap<T>(): T {
    return this.worker as T;
  }
}

export interface RunningWorker {
  app: INestApplication;
  port: number;
  /** Graceful shutdown; resolves with the exit code (0: drained in time). */
  stop(signal?: string): Promise<number>;
}

/** Starts one worker: the HTTP side (health, metrics) and the purchase consumer. */
export async function startWorker(settings: Settings): Promise<RunningWorker> {
  const app = await NestFactory.create(WorkerModule.forRoot(settings), { bufferLogs: true });
  const logger = app.get(PinoLogger);
  app.useLogger(logger);
  const worker = app.get(Worker);
  app.connectMicroservice({ strategy: new WorkerTransport(worker) }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  await app.listen(settings.HTTP_PORT, '0.0.0.0');
  const port = ((app.getHttpServer() as HttpServer).address() as AddressInfo).port;
  logger.log({ msg: 'http listening', port });
  let stopping: Promise<number> | undefined;
  return {
    app,
    port,
    stop: (signal) => {
      stopping ??= (async () => {
        // The worker closes first, naming the signal; Nest's own shutdown then gets the same closing promise.
        await worker.close(signal);
        await app.close();
        return worker.exitCode;
      })();
      return stopping;
    },
  };
}
