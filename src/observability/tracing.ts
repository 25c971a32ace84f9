/**
 * Tracing of a purchase end to end, with OpenTelemetry. Off unless `OTEL_TRACES_EXPORTER` asks for it
 * (`otlp`, configured by the standard `OTEL_EXPORTER_OTLP_*` variables, or `console`): then the W3C trace
 * context a publisher put in the AMQP headers (`traceparent`, `tracestate`) is continued with a span per
 * message, a span per batch linked to its messages, a span per INSERT and a span for the acks. Off, nothing
 * here runs per message (every helper returns at once) and the SDK is not even loaded: only this API-only
 * module is, and `tracing-sdk.ts` when the environment asks for traces.
 */
import {
  context,
  type Context,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api';

export const TRACER_NAME = 'flashsale-worker';

let active = false;

/** Whether spans are recorded: false unless tracing was started (observability/tracing-sdk.ts). */
export function tracingActive(): boolean {
  return active;
}

/** Called by the SDK set-up when it registers, and unregisters, a tracer provider. */
export function setTracingActive(on: boolean): void {
  active = on;
}

/** The exporters the tracing SDK knows (src/observability/tracing-sdk.ts), and `none`. */
export const TRACES_EXPORTERS = ['otlp', 'console'] as const;

/** Names in OTEL_TRACES_EXPORTER that are no exporter: a misspelt one must stop the start, not tracing. */
export function unknownTracesExporters(env: NodeJS.ProcessEnv): string[] {
  return tracesExporters(env).filter((name) => !(TRACES_EXPORTERS as readonly string[]).includes(name));
}

/** Whether the environment asks for traces (`OTEL_TRACES_EXPORTER` names an exporter other than none). */
export function tracesRequested(env: NodeJS.ProcessEnv): boolean {
  return tracesExporters(env).length > 0;
}

export function tracesExporters(env: NodeJS.ProcessEnv): string[] {
  return (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '' && name !== 'none');
}

/** AMQP headers as the carrier of the trace context; a header may arrive as a string or as bytes. */
const headerGetter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    if (typeof value === 'string') return value;
    return Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
  },
};

function tracer() {
  return trace.getTracer(TRACER_NAME);
}

/** The span of one message, continuing the publisher's trace from its headers; undefined when off. */
export function startMessageSpan(
  queue: string,
  headers: Record<string, unknown> | undefined,
  messageId: string | undefined,
): Span | undefined {
  if (!active) return undefined;
  const parent = headers ? propagation.extract(ROOT_CONTEXT, headers, headerGetter) : ROOT_CONTEXT;
  return tracer().startSpan(
    `${queue} process`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'process',
        'messaging.destination.name': queue,
        ...(messageId === undefined ? {} : { 'messaging.message.id': messageId }),
      },
    },
    parent,
  );
}

/** The span of one batch, linked to the spans of its messages; undefined when off. */
export function startBatchSpan(
  size: number,
  messages: readonly (SpanContext | undefined)[],
): Span | undefined {
  if (!active) return undefined;
  const links: Link[] = [];
  for (const spanContext of messages) if (spanContext) links.push({ context: spanContext });
  return tracer().startSpan('purchase batch', { attributes: { 'flashsale.batch.size': size }, links });
}

/** Runs `work` inside a child span of `parent` (a batch), recording its failure; plain `work()` when off. */
export async function inChildSpan<T>(
  parent: Span | undefined,
  name: string,
  work: () => Promise<T>,
): Promise<T> {
  if (!parent) return work();
  const span = tracer().startSpan(name, {}, trace.setSpan(context.active(), parent));
  try {
    return await work();
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw error;
  } finally {
    span.end();
  }
}

/** A child span of `parent` around synchronous work (the acks of a batch); plain `work()` when off. */
export function inChildSpanSync<T>(parent: Context | undefined, name: string, work: () => T): T {
  if (!parent) return work();
  const span = tracer().startSpan(name, {}, parent);
  try {
    return work();
  } finally {
    span.end();
  }
}

/** The context holding a batch span, for the spans its outcomes lead to. */
export function contextOf(span: Span | undefined): Context | undefined {
  return span ? trace.setSpan(ROOT_CONTEXT, span) : undefined;
}

/** Puts the active trace context into AMQP headers (a no-op unless the application set up OpenTelemetry). */
export function injectTraceContext(headers: Record<string, unknown>): Record<string, unknown> {
  propagation.inject(context.active(), headers);
  return headers;
}
