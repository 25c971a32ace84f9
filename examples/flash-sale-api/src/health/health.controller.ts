import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { PurchasePublisherHealthIndicator } from '@flashsale/publisher/nest';

/** `/health`: up while the publisher is connected to the broker and takes publishes, with the reason when down. */
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly publisher: PurchasePublisherHealthIndicator,
  ) {}

  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.publisher.isHealthy('rabbitmq')]);
  }
}
