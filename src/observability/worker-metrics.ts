import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { BUILD_INFO, type BuildInfo } from './build-info.js';
import { MESSAGE_OUTCOMES, METRIC, REPLY_RESULTS } from './metric-names.js';

/** The `outcome` label of `flashsale_messages_total`. */
export type CountedOutcome = (typeof MESSAGE_OUTCOMES)[number];

/** The `result` label of `flashsale_replies_total`. */
export type ReplyResult = (typeof REPLY_RESULTS)[number];

/**
 * Every metric of the worker, on one registry (the process-wide one in production, a fresh one in
 * unit tests). Updated only through these methods, so the names live in one place.
 */
export class WorkerMetrics {
  private readonly messages: Counter<'outcome'>;
  private readonly batchSize: Histogram;
  private readonly dbWriteDuration: Histogram;
  private readonly dbWriteFailures: Counter<'code'>;
  private readonly publishToCommit: Histogram;
  private readonly inFlight: Gauge;
  private readInFlight: () => number = () => 0;
  readonly auditBufferSize: Gauge;
  private readonly auditFlushed: Counter;
  private readonly auditDropped: Counter;
  private readonly auditFlushFailures: Counter;
  private readonly auditUnstorableEvents: Counter;
  private readonly queueDepth: Gauge<'queue'>;
  private readonly dlqDepth: Gauge<'queue'>;
  private readonly consumerPaused: Gauge;
  private readonly circuitOpen: Gauge;
  private readonly synchronousStandbys: Gauge;
  private readonly synchronousCommit: Gauge<'setting'>;
  private readonly ackFrames: Counter;
  private readonly publishesReturned: Counter<'queue'>;
  private readonly queueMissing: Gauge<'queue'>;
  private readonly publishRefused: Gauge;
  private readPublishRefused: () => boolean = () => false;
  private readonly outcomeCounters: Record<CountedOutcome, { inc(count: number): void }>;
  private readonly replies: Counter<'result'>;

  constructor(registry: Registry, build: BuildInfo = BUILD_INFO) {
    const registers = [registry];
    // Always 1: the labels are the point (which version runs where; `count by (version)` during a rollout).
    new Gauge({
      name: METRIC.buildInfo,
      help: 'Version of this worker (package.json) and of the Node running it; the value is always 1.',
      labelNames: ['version', 'node'],
      registers,
    }).set({ version: build.version, node: build.node }, 1);
    this.messages = new Counter({
      name: METRIC.messages,
      help: 'Messages by outcome: confirmed, duplicate, rejected, retried (requeued); failed = its ack/nack could not be sent (channel gone, shutdown) and the broker redelivers it.',
      labelNames: ['outcome'],
      registers,
    });
    this.batchSize = new Histogram({
      name: METRIC.batchSize,
      help: 'Purchases written by one INSERT.',
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
      registers,
    });
    this.dbWriteDuration = new Histogram({
      name: METRIC.dbWriteDuration,
      help: 'Duration of one batch INSERT of orders, in seconds.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.dbWriteFailures = new Counter({
      name: METRIC.dbWriteFailures,
      help: 'Failed batch INSERTs of orders by SQLSTATE or driver code (57014: statement timeout; none: no code, e.g. a client-side query timeout).',
      labelNames: ['code'],
      registers,
    });
    // The codes of a hung database (statement timeout, client-side timeout) exist from the start.
    for (const code of ['57014', 'none']) this.dbWriteFailures.inc({ code }, 0);
    this.publishToCommit = new Histogram({
      name: METRIC.publishToCommit,
      help: "From the message's timestamp to the commit of its order, in seconds.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.inFlight = new Gauge({
      name: METRIC.inFlight,
      help: 'Messages received and not yet settled.',
      registers,
      // Read when scraped: nothing to update per message.
      collect: () => this.inFlight.set(this.readInFlight()),
    });
    this.auditBufferSize = new Gauge({
      name: METRIC.auditBufferSize,
      help: 'Audit events buffered in memory, not yet written.',
      registers,
    });
    this.auditFlushed = new Counter({ name: METRIC.auditFlushed, help: 'Audit events written.', registers });
    this.auditDropped = new Counter({
      name: METRIC.auditDropped,
      help: 'Audit events dropped because the buffer was full.',
      registers,
    });
    this.auditFlushFailures = new Counter({
      name: METRIC.auditFlushFailures,
      help: 'Audit flushes that failed (their events are kept and retried).',
      registers,
    });
    this.auditUnstorableEvents = new Counter({
      name: METRIC.auditUnstorable,
      help: 'Audit events the database refused as they were; written without their details (reason "unstorable details").',
      registers,
    });
    this.queueDepth = new Gauge({
      name: METRIC.queueDepth,
      help: 'Ready messages in the purchase queue (passive check).',
      labelNames: ['queue'],
      registers,
    });
    this.dlqDepth = new Gauge({
      name: METRIC.dlqDepth,
      help: 'Messages in the dead-letter queue (passive check).',
      labelNames: ['queue'],
      registers,
    });
    this.consumerPaused = new Gauge({
      name: METRIC.consumerPaused,
      help: '1 while this worker is not consuming (database circuit open, broker away, shutting down).',
      registers,
    });
    this.circuitOpen = new Gauge({
      name: METRIC.circuitOpen,
      help: '1 while the database circuit breaker is open.',
      registers,
    });
    this.synchronousStandbys = new Gauge({
      name: METRIC.dbSynchronousStandbys,
      help: 'Synchronous standbys confirming each commit of the orders database now (0: a failover can lose acked orders unless the platform replicates below PostgreSQL; -1: this role may not read pg_stat_replication).',
      registers,
    });
    this.synchronousCommit = new Gauge({
      name: METRIC.dbSynchronousCommit,
      help: "The worker's session synchronous_commit, as the label whose value is 1 (on, remote_apply, remote_write wait for a synchronous standby; local, off do not).",
      labelNames: ['setting'],
      registers,
    });
    this.synchronousStandbys.set(-1);
    this.ackFrames = new Counter({
      name: METRIC.ackFrames,
      help: 'AMQP ack frames sent; one frame acks a whole run of settled messages.',
      registers,
    });
    this.publishesReturned = new Counter({
      name: METRIC.publishesReturned,
      help: 'Dead-letter and retry publishes the broker returned unroutable: their queue is missing. The message stays on its queue and is retried.',
      labelNames: ['queue'],
      registers,
    });
    this.queueMissing = new Gauge({
      name: METRIC.queueMissing,
      help: '1 while the last publish to this queue (dead-letter queue, or the purchase queue for a classic retry) came back unroutable.',
      labelNames: ['queue'],
      registers,
    });
    this.publishRefused = new Gauge({
      name: METRIC.publishRefused,
      help: "1 while the broker refuses the worker's dead-letter and retry publishes (e.g. ACCESS_REFUSED: no write permission), until one is confirmed again.",
      registers,
      collect: () => this.publishRefused.set(this.readPublishRefused() ? 1 : 0),
    });
    this.replies = new Counter({
      name: METRIC.replies,
      help: 'Replies to messages that asked for one (replyTo): sent; failed = not sent (no usable replyTo or correlationId, order not found, channel gone); returned = sent, then returned unroutable (no such queue).',
      labelNames: ['result'],
      registers,
    });
    for (const result of REPLY_RESULTS) this.replies.inc({ result }, 0);
    this.outcomeCounters = Object.fromEntries(
      MESSAGE_OUTCOMES.map((outcome) => [outcome, this.messages.labels(outcome)]),
    ) as Record<CountedOutcome, { inc(count: number): void }>;
  }

  /** The in-flight gauge reads `count` whenever /metrics is scraped. */
  watchInFlight(count: () => number): void {
    this.readInFlight = count;
  }

  settled(outcome: CountedOutcome, count = 1): void {
    // Label children are resolved once: hashing the labels on every message shows in profiles.
    this.outcomeCounters[outcome].inc(count);
  }

  replied(result: ReplyResult, count = 1): void {
    this.replies.inc({ result }, count);
  }

  ackFrameSent(): void {
    this.ackFrames.inc();
  }

  /** Starts the per-queue series at 0, so that dashboards and alerts see them before anything happens. */
  watchQueues(...queues: string[]): void {
    for (const queue of queues) {
      this.publishesReturned.inc({ queue }, 0);
      this.queueMissing.set({ queue }, 0);
    }
  }

  publishReturned(queue: string): void {
    this.publishesReturned.inc({ queue });
  }

  /** The refused-publishes gauge reads `refused` whenever /metrics is scraped. */
  watchPublishRefused(refused: () => boolean): void {
    this.readPublishRefused = refused;
  }

  queueMissingState(queue: string, missing: boolean): void {
    this.queueMissing.set({ queue }, missing ? 1 : 0);
  }

  batchWritten(size: number, seconds: number): void {
    this.batchSize.observe(size);
    this.dbWriteDuration.observe(seconds);
  }

  batchFailed(code: string | undefined): void {
    this.dbWriteFailures.inc({ code: code ?? 'none' });
  }

  committed(latencySeconds: number): void {
    this.publishToCommit.observe(latencySeconds);
  }

  auditWritten(count: number): void {
    this.auditFlushed.inc(count);
  }

  auditDroppedEvents(count: number): void {
    this.auditDropped.inc(count);
  }

  auditFlushFailed(): void {
    this.auditFlushFailures.inc();
  }

  auditUnstorable(): void {
    this.auditUnstorableEvents.inc();
  }

  queueDepths(queue: string, ready: number, deadLetterQueue: string, deadLettered: number): void {
    this.queueDepth.set({ queue }, ready);
    this.dlqDepth.set({ queue: deadLetterQueue }, deadLettered);
  }

  consumerState(paused: boolean): void {
    this.consumerPaused.set(paused ? 1 : 0);
  }

  circuitState(open: boolean): void {
    this.circuitOpen.set(open ? 1 : 0);
  }

  /** What the database said about the durability of a commit; `standbys` undefined: not readable (-1). */
  durability(standbys: number | undefined, synchronousCommit: string): void {
    this.synchronousStandbys.set(standbys ?? -1);
    this.synchronousCommit.reset();
    this.synchronousCommit.set({ setting: synchronousCommit }, 1);
  }
}
