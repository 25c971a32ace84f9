/**
 * Names of every metric the worker exports on /metrics (besides Node's default process metrics).
 * Dashboards and alert rules under deploy/ may only use these and the defaults.
 */
export const METRIC = {
  messages: 'flashsale_messages_total',
  batchSize: 'flashsale_batch_size',
  dbWriteDuration: 'flashsale_db_write_duration_seconds',
  dbWriteFailures: 'flashsale_db_write_failures_total',
  publishToCommit: 'flashsale_publish_to_commit_seconds',
  inFlight: 'flashsale_messages_in_flight',
  auditBufferSize: 'flashsale_audit_buffer_size',
  auditFlushed: 'flashsale_audit_events_flushed_total',
  auditDropped: 'flashsale_audit_events_dropped_total',
  auditFlushFailures: 'flashsale_audit_flush_failures_total',
  auditUnstorable: 'flashsale_audit_events_unstorable_total',
  queueDepth: 'flashsale_queue_depth',
  dlqDepth: 'flashsale_dlq_depth',
  consumerPaused: 'flashsale_consumer_paused',
  circuitOpen: 'flashsale_db_circuit_open',
  dbSynchronousStandbys: 'flashsale_db_synchronous_standbys',
  dbSynchronousCommit: 'flashsale_db_synchronous_commit',
  ackFrames: 'flashsale_ack_frames_total',
  publishesReturned: 'flashsale_publishes_returned_total',
  queueMissing: 'flashsale_queue_missing',
  publishRefused: 'flashsale_publish_refused',
  replies: 'flashsale_replies_total',
  buildInfo: 'flashsale_build_info',
} as const;

export const METRIC_NAMES: readonly string[] = Object.values(METRIC);

/** Outcomes counted by `flashsale_messages_total{outcome}`. */
export const MESSAGE_OUTCOMES = ['confirmed', 'duplicate', 'rejected', 'retried', 'failed'] as const;

/**
 * Results counted by `flashsale_replies_total{result}`: sent (handed to the broker), failed (not sent: no
 * address it can carry, no order found, channel or connection gone), returned (sent, then returned by the
 * broker as unroutable: its `replyTo` names no queue).
 */
export const REPLY_RESULTS = ['sent', 'failed', 'returned'] as const;
