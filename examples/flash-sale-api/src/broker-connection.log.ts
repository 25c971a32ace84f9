import type { LoggerService } from '@nestjs/common';
import type { PublisherConnectionEvent } from '@flashsale/publisher';

/**
 * The publisher's connection as the API's log tells it: each change once (connected, lost, blocked), not every
 * failed attempt while the broker stays away.
 */
export function brokerConnectionLog(logger: LoggerService): (event: PublisherConnectionEvent) => void {
  let failing = false;
  return (event) => {
    switch (event.type) {
      case 'connected':
        failing = false;
        logger.log(`connected to the broker at ${event.url}`);
        return;
      case 'disconnected':
        failing = true;
        logger.warn(`lost the broker: ${event.error.message}; purchases wait for it, then get 503`);
        return;
      case 'connect-failed':
        if (!failing) logger.warn(`cannot reach the broker: ${event.error.message}; retrying`);
        failing = true;
        return;
      case 'setup-failed':
        logger.error(`setting up the publishing channel failed: ${event.error.message}`);
        return;
      case 'blocked':
        logger.warn(`the broker blocks publishing: ${event.reason}`);
        return;
      case 'unblocked':
        logger.log('the broker takes publishes again');
        return;
    }
  };
}
