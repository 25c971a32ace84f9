import { Logger } from '@nestjs/common';
import type { Settings } from '../config/settings.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import type { BrokerConnection } from './broker-connection.js';

/** Feeds the queue and DLQ depth gauges from passive queue checks on a timer. */
export class QueueDepthMonitor {
  private readonly logger = new Logger(QueueDepthMonitor.name);
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly broker: BrokerConnection,
    private readonly metrics: WorkerMetrics,
    private readonly settings: Settings,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.poll(), this.settings.QUEUE_DEPTH_POLL_MS).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async poll(): Promise<void> {
    const connection = this.broker.current;
    if (!connection) return;
    let channel;
    try {
      channel = await connection.createChannel();
      channel.on('error', (error: Error) => this.logger.debug(`depth check channel: ${error.message}`));
      const queue = await channel.checkQueue(this.settings.PURCHASE_QUEUE);
      const deadLetters = await channel.checkQueue(this.settings.DEAD_LETTER_QUEUE);
      this.metrics.queueDepths(queue.queue, queue.messageCount, deadLetters.queue, deadLetters.messageCount);
    } catch (error) {
      // 404 before the topology is declared (start-up, or right after a queue was deleted) is expected.
      const notYetDeclared = (error as { code?: number }).code === 404;
      const log = notYetDeclared ? this.logger.debug.bind(this.logger) : this.logger.warn.bind(this.logger);
      log(`queue depth check failed: ${(error as Error).message}`);
    } finally {
      await channel
        ?.close()
        .catch((error: Error) => this.logger.debug(`closing depth check channel: ${error.message}`));
    }
  }
}
