import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { PurchasePublisher } from '../purchase-publisher.js';

/**
 * The publisher's health for `@nestjs/terminus`: up while it is connected and takes publishes; down, with the
 * reason, while it is closed, disconnected, blocked by the broker, or refusing publishes (back-pressure).
 *   this.health.check([() => this.publisherHealth.isHealthy('rabbitmq')])
 */
@Injectable()
export class PurchasePublisherHealthIndicator {
  constructor(
    private readonly publisher: PurchasePublisher,
    private readonly indicators: HealthIndicatorService,
  ) {}

  isHealthy<const Key extends string>(key: Key) {
    const indicator = this.indicators.check(key);
    const state = this.publisher.state;
    const counts = {
      queue: this.publisher.queue,
      pendingPublishes: state.pendingPublishes,
      maxPendingPublishes: state.maxPendingPublishes,
    };
    const reason = downReason(state);
    return reason === undefined ? indicator.up(counts) : indicator.down({ ...counts, reason });
  }
}

function downReason(state: PurchasePublisher['state']): string | undefined {
  if (state.closed) return 'the publisher is closed';
  if (!state.connected) return 'not connected to the broker';
  if (state.blockedReason !== undefined) return `the broker blocks publishing: ${state.blockedReason}`;
  if (state.pendingPublishes >= state.maxPendingPublishes) {
    return `back-pressure: ${state.pendingPublishes} publishes await a broker confirm (maxPendingPublishes ${state.maxPendingPublishes})`;
  }
  return undefined;
}
