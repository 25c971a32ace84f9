import { Logger } from '@nestjs/common';
import type { Settings } from '../config/settings.js';
import type { WorkerMetrics } from '../observability/worker-metrics.js';
import type { BrokerConnection } from './broker-connection.js';
import { withScratchChannel } from './scratch-channel.js';

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
    try {
      const [queue, deadLetters] = await withScratchChannel(connection, async (channel) => [
        await channel.checkQueue(this.settings.PURCHASE_QUEUE),
        await channel.checkQueue(this.settings.DEAD_LETTER_QUEUE),
      ]);
      this.metrics.queueDepths(queue.queue, queue.messageCount, deadLetters.queue, deadLetters.messageCount);
    } catch (error) {
      // 404 before the topology is declared (start-up, or right after a queue was deleted) is expected.
      const notYetDeclared = (error as { code?: number }).code === 404;
      const log = notYetDeclared ? this.logger.debug.bind(this.logger) : this.logger.warn.bind(this.logger);
      log(`queue depth check failed: ${(error as Error).message}`);
    }
  }
}
