import { type DynamicModule, Module } from '@nestjs/common';
import { AuditModule } from './audit/audit.module.js';
import { BrokerModule } from './broker/broker.module.js';
import { ConfigurationModule } from './config/config.module.js';
import type { Settings } from './config/settings.js';
import { DatabaseModule } from './database/database.module.js';
import { HealthModule } from './health/health.module.js';
import { ObservabilityModule } from './observability/observability.module.js';
import { PurchasesModule } from './purchases/purchases.module.js';
import { WorkerLifecycle } from './worker.lifecycle.js';

@Module({})
export class AppModule {
  static forRoot(settings: Settings): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigurationModule.forRoot(settings),
        ObservabilityModule.forRoot(settings),
        DatabaseModule,
        AuditModule,
        PurchasesModule,
        BrokerModule,
        HealthModule,
      ],
      providers: [WorkerLifecycle],
    };
  }
}
