import { type BeforeApplicationShutdown, type DynamicModule, Logger, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PurchasePublisherModule } from '@flashsale/publisher/nest';
import { brokerConnectionLog } from './broker-connection.log.js';
import { HealthController } from './health/health.controller.js';
import { PurchasesController } from './purchases/purchases.controller.js';
import { API_SETTINGS, type ApiSettings } from './settings.js';

/** The example API: the purchases endpoint and /health over one publisher, closed when the API shuts down. */
@Module({})
export class ApiModule implements BeforeApplicationShutdown {
  private readonly logger = new Logger('FlashSaleApi');

  static forRoot(settings: ApiSettings): DynamicModule {
    return {
      module: ApiModule,
      imports: [
        TerminusModule,
        PurchasePublisherModule.forRoot({
          url: settings.RABBITMQ_URL.split(',').map((url) => url.trim()),
          queue: settings.PURCHASE_QUEUE,
          maxPendingPublishes: settings.MAX_PENDING_PUBLISHES,
          publishTimeoutMs: settings.PUBLISH_TIMEOUT_MS,
          onConnectionEvent: brokerConnectionLog(new Logger('PurchasePublisher')),
        }),
      ],
      controllers: [PurchasesController, HealthController],
      providers: [{ provide: API_SETTINGS, useValue: settings }],
    };
  }

  beforeApplicationShutdown(signal?: string): void {
    // Then the HTTP server closes once the requests in flight are answered, and the publisher after it.
    this.logger.log(`closing${signal ? ` on ${signal}` : ''}: answering the requests in flight`);
  }
}
