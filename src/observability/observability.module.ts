import { Global, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { LoggerModule } from 'nestjs-pino';
import { register } from 'prom-client';
import type { Settings } from '../config/settings.js';
import { redactValue } from './log-redaction.js';
import { WorkerMetrics } from './worker-metrics.js';

/** Structured JSON logs (pino), Prometheus metrics on /metrics, and the worker's own metrics. */
@Global()
@Module({})
export class ObservabilityModule {
  static forRoot(settings: Settings) {
    return {
      module: ObservabilityModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: {
            level: settings.LOG_LEVEL,
            autoLogging: false,
            quietReqLogger: true,
            base: { worker: settings.WORKER_ID },
            formatters: { level: (label: string) => ({ level: label }) },
            hooks: {
              // Every argument of every log call is scrubbed: a connection URL never reaches a log line
              // with its password, whichever library put it in an error message.
              logMethod(args: unknown[], method: (...args: unknown[]) => void) {
                method.apply(
                  this,
                  args.map((arg) => redactValue(arg)),
                );
              },
            },
          },
        }),
        PrometheusModule.register({ path: '/metrics', defaultMetrics: { enabled: true } }),
      ],
      providers: [{ provide: WorkerMetrics, useFactory: () => new WorkerMetrics(register) }],
      exports: [WorkerMetrics],
    };
  }
}
