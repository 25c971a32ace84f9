import { propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  type SpanExporter,
  type SpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { setTracingActive, tracesExporters } from './tracing.js';

/**
 * The OpenTelemetry SDK set-up, loaded only when traces are asked for: a tracer provider with these span
 * processors and the W3C trace-context propagator, registered globally. Returns its shutdown, which sends
 * the spans still buffered.
 */
export function registerTracing(processors: SpanProcessor[]): () => Promise<void> {
  const provider = new TracerProvider({ spanProcessors: processors });
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  setTracingActive(true);
  return async () => {
    setTracingActive(false);
    await provider.shutdown();
    trace.disable();
    propagation.disable();
  };
}

/**
 * Starts tracing as the standard variables say: `OTEL_TRACES_EXPORTER` (`otlp`, `console`, or several,
 * comma-separated), the OTLP exporter configured by `OTEL_EXPORTER_OTLP_*`, and `OTEL_SERVICE_NAME`.
 * Undefined when no exporter is asked for: nothing is started.
 */
export function startTracingFromEnvironment(env: NodeJS.ProcessEnv): (() => Promise<void>) | undefined {
  const exporters = tracesExporters(env);
  if (exporters.length === 0) return undefined;
  return registerTracing(exporters.map((name) => new BatchSpanProcessor({ exporter: exporterNamed(name) })));
}

function exporterNamed(name: string): SpanExporter {
  if (name === 'otlp') return new OTLPTraceExporter();
  if (name === 'console') return new ConsoleSpanExporter();
  throw new Error(`OTEL_TRACES_EXPORTER: unknown exporter "${name}" (otlp, console or none)`);
}
