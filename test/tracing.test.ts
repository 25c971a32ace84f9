/**
 * A purchase traced end to end with OpenTelemetry: the API's span, carried in the AMQP headers by
 * PurchasePublisher, is continued by the worker's span for the message, which the batch's span links to; the
 * INSERT and the acks are children of the batch. Spans go to an in-memory exporter.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { randomUUID } from 'node:crypto';
import { registerTracing } from '../src/observability/tracing-sdk.js';
import { PurchasePublisher } from '@flashsale/publisher';
import { waitFor } from './support/harness.js';
import { TestWorld } from './support/test-worker.js';

describe('tracing a purchase from the publisher to its ack', () => {
  const exporter = new InMemorySpanExporter();
  const contextManager = new AsyncLocalStorageContextManager();
  let stopTracing: () => Promise<void>;
  let world: TestWorld;

  beforeAll(async () => {
    context.setGlobalContextManager(contextManager.enable());
    stopTracing = registerTracing([new SimpleSpanProcessor({ exporter })]);
    world = await TestWorld.create('tracing');
    await world.startWorker({ BATCH_WAIT_MS: 5 });
  });
  afterAll(async () => {
    await world?.close();
    await stopTracing?.();
    context.disable();
  });

  const spans = () => exporter.getFinishedSpans();
  const named = (name: string) => spans().filter((span) => span.name === name);
  const childrenOf = (parent: ReadableSpan, name: string) =>
    named(name).filter((span) => span.parentSpanContext?.spanId === parent.spanContext().spanId);

  it('continues the publisher’s trace: message span, batch span linked to it, INSERT and ack under the batch', async () => {
    const saleId = randomUUID();
    const publisher = new PurchasePublisher({ url: world.rabbitUrl, queue: world.queue }).start();
    const tracer = trace.getTracer('flash-sale-api');
    const apiSpan = tracer.startSpan('POST /purchases');
    try {
      await context.with(trace.setSpan(ROOT_CONTEXT, apiSpan), () =>
        publisher.publish({ saleId, userId: 'traced', timestamp: new Date() }),
      );
    } finally {
      apiSpan.end();
      await publisher.close();
    }
    await waitFor('the order', async () => (await world.orders()) === 1);

    const message = await waitFor('the message span', () =>
      named(`${world.queue} process`).find(
        (span) => span.parentSpanContext?.spanId === apiSpan.spanContext().spanId,
      ),
    );
    expect(message.spanContext().traceId).toBe(apiSpan.spanContext().traceId);
    expect(message.attributes['messaging.system']).toBe('rabbitmq');

    const batch = await waitFor('the batch span linked to the message', () =>
      named('purchase batch').find((span) =>
        span.links.some((link) => link.context.spanId === message.spanContext().spanId),
      ),
    );
    expect(batch.attributes['flashsale.batch.size']).toBe(1);
    expect(childrenOf(batch, 'orders insert')).toHaveLength(1);
    expect(childrenOf(batch, 'ack')).toHaveLength(1);
  });

  it('starts a trace of its own for a message whose trace headers are garbage (NUL, lone surrogates, 40 KB)', async () => {
    const saleId = randomUUID();
    const messageId = randomUUID();
    await world.publishRaw(
      [JSON.stringify({ saleId, userId: 'garbage-trace', timestamp: new Date().toISOString() })],
      {
        messageId,
        headers: { traceparent: '00-\u0000\uD800-'.repeat(4000), tracestate: 'k=\uDC00,'.repeat(100) },
      },
    );
    await waitFor(
      'the order',
      async () => (await world.count('SELECT count(*) FROM orders WHERE sale_id = $1', [saleId])) === 1,
    );
    const message = await waitFor('the message span', () =>
      named(`${world.queue} process`).find((span) => span.attributes['messaging.message.id'] === messageId),
    );
    expect(message.parentSpanContext).toBeUndefined();
    expect(message.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('keeps the trace context in the dead-letter copy', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await world.publishRaw(['not json'], { headers: { traceparent } });
    const [deadLetter] = await world.deadLetters(1);
    expect(deadLetter?.properties.headers?.traceparent).toBe(traceparent);
    const message = await waitFor('the poison message span', () =>
      named(`${world.queue} process`).find(
        (span) => span.spanContext().traceId === '0af7651916cd43dd8448eb211c80319c',
      ),
    );
    expect(message.attributes['flashsale.outcome']).toBe('rejected');
  });
});
