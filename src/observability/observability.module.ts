import { Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { LoggerModule } from 'nestjs-pino';
import { type DestinationStream, type LoggerOptions, stdTimeFunctions } from 'pino';
import pretty from 'pino-pretty';
import { register } from 'prom-client';
import type { Settings } from '../config/settings.js';
import { redactValue } from '../common/log-redaction.js';
import { WorkerMetrics } from './worker-metrics.js';

/**
 * The worker's pino options: JSON lines with a textual level, an ISO 8601 `time`, the worker's id, credentials
 * redacted.
 */
export function workerLogOptions(settings: Pick<Settings, 'LOG_LEVEL' | 'WORKER_ID'>): LoggerOptions {
  return {
    level: settings.LOG_LEVEL,
    base: { worker: settings.WORKER_ID },
    timestamp: stdTimeFunctions.isoTime,
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

/**
 * Where the logs go: on a terminal, one readable line per entry (pino-pretty, written synchronously so the
 * last lines before an exit are not lost); anywhere else (a container, a file, a pipe) pino's JSON lines.
 */
export function workerLogDestination(
  stdout: NodeJS.WriteStream = process.stdout,
): DestinationStream | undefined {
  if (!stdout.isTTY) return undefined;
  return pretty({
    destination: stdout,
    sync: true,
    colorize: stdout.hasColors?.() ?? false,
    // `time` is already ISO 8601 (workerLogOptions): shown as it is, as in the JSON lines.
    translateTime: false,
    // The process is obvious on a terminal; the worker id leads the message.
    ignore: 'pid,hostname,worker',
    messageFormat: '{worker} {msg}',
  });
}

function httpLoggerParams(settings: Settings) {
  const options = { ...workerLogOptions(settings), autoLogging: false, quietReqLogger: true };
  const destination = workerLogDestination();
  return destination ? ([options, destination] as [typeof options, DestinationStream]) : options;
}

/** Structured JSON logs (pino), Prometheus metrics on /metrics, and the worker's own metrics. */
@Module({})
export class ObservabilityModule {
  static forRoot(settings: Settings) {
    return {
      module: ObservabilityModule,
      imports: [
        LoggerModule.forRoot({ pinoHttp: httpLoggerParams(settings) }),
        PrometheusModule.register({ path: '/metrics', defaultMetrics: { enabled: true } }),
      ],
      providers: [{ provide: WorkerMetrics, useFactory: () => new WorkerMetrics(register) }],
      exports: [WorkerMetrics],
    };
  }
}
