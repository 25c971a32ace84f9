import { Global, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { LoggerModule } from 'nestjs-pino';
import type { LoggerOptions } from 'pino';
import { register } from 'prom-client';
import type { Settings } from '../config/settings.js';
import { redactValue } from './log-redaction.js';
import { WorkerMetrics } from './worker-metrics.js';

/** The worker's pino options: JSON lines with a textual level, the worker's id, credentials redacted. */
export function workerLogOptions(settings: Pick<Settings, 'LOG_LEVEL' | 'WORKER_ID'>): LoggerOptions {
  return {
    level: settings.LOG_LEVEL,
    base: { worker: settings.WORKER_ID },
    formatters: { level: (label: string) => ({ level: label }) },
    hooks: {
      // Every argument of every log call is scrubbed: a connection URL never reaches a log line with its
      // password, whichever library put it in an error message.
      logMethod(args, method) {
        method.apply(this, args.map((arg) => redactValue(arg)) as Parameters<typeof method>);
      },
    },
  };
}

/** Structured JSON logs (pino), Prometheus metrics on /metrics, and the worker's own metrics. */
@Global()
@Module({})
export class ObservabilityModule {
  static forRoot(settings: Settings) {
    return {
      module: ObservabilityModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: { ...workerLogOptions(settings), autoLogging: false, quietReqLogger: true },
        }),
        PrometheusModule.register({ path: '/metrics', defaultMetrics: { enabled: true } }),
      ],
      providers: [{ provide: WorkerMetrics, useFactory: () => new WorkerMetrics(register) }],
      exports: [WorkerMetrics],
    };
  }
}
