import {
  type DynamicModule,
  Inject,
  Injectable,
  type InjectionToken,
  Module,
  type ModuleMetadata,
  type OnApplicationShutdown,
  type OnModuleInit,
  type OptionalFactoryDependency,
} from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { PurchasePublisherOptions } from '../publisher-options.js';
import { PurchasePublisher } from '../purchase-publisher.js';
import { PurchasePublisherHealthIndicator } from './purchase-publisher.health.js';

/** Injection token of the options the module's publisher was made with. */
export const PURCHASE_PUBLISHER_OPTIONS = Symbol('PURCHASE_PUBLISHER_OPTIONS');

export interface PurchasePublisherModuleOptions extends PurchasePublisherOptions {
  /** Longest wait at shutdown for pending confirms and replies, in milliseconds. Default 10 000. */
  closeTimeoutMs?: number;
}

export interface PurchasePublisherModuleAsyncOptions {
  /** Modules whose providers `useFactory` needs (a ConfigModule). */
  imports?: ModuleMetadata['imports'];
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  useFactory: (...args: never[]) => PurchasePublisherModuleOptions | Promise<PurchasePublisherModuleOptions>;
  /** Register the module globally, so every module can inject the publisher. Default false. */
  global?: boolean;
}

const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/**
 * The publisher's lifecycle in the application's: connecting starts when the module initialises (publishes
 * made before the first connect wait for it); at shutdown, after the HTTP server stopped taking requests,
 * the pending confirms and replies drain (bounded by `closeTimeoutMs`) and the connection closes.
 */
@Injectable()
class PurchasePublisherLifecycle implements OnModuleInit, OnApplicationShutdown {
  constructor(
    private readonly publisher: PurchasePublisher,
    @Inject(PURCHASE_PUBLISHER_OPTIONS) private readonly options: PurchasePublisherModuleOptions,
  ) {}

  onModuleInit(): void {
    this.publisher.start();
  }

  onApplicationShutdown(): Promise<void> {
    return this.publisher.close({ timeoutMs: this.options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS });
  }
}

const providers = [
  {
    provide: PurchasePublisher,
    useFactory: (options: PurchasePublisherModuleOptions) => new PurchasePublisher(options),
    inject: [PURCHASE_PUBLISHER_OPTIONS],
  },
  PurchasePublisherLifecycle,
  HealthIndicatorService,
  PurchasePublisherHealthIndicator,
];
const exported = [PurchasePublisher, PurchasePublisherHealthIndicator, PURCHASE_PUBLISHER_OPTIONS];

/**
 * A `PurchasePublisher` for a NestJS application, injectable by its class, and its health indicator for
 * `@nestjs/terminus` (`PurchasePublisherHealthIndicator`).
 */
@Module({})
export class PurchasePublisherModule {
  static forRoot(options: PurchasePublisherModuleOptions & { global?: boolean }): DynamicModule {
    const { global = false, ...publisherOptions } = options;
    return {
      module: PurchasePublisherModule,
      global,
      providers: [{ provide: PURCHASE_PUBLISHER_OPTIONS, useValue: publisherOptions }, ...providers],
      exports: exported,
    };
  }

  static forRootAsync(options: PurchasePublisherModuleAsyncOptions): DynamicModule {
    return {
      module: PurchasePublisherModule,
      global: options.global ?? false,
      imports: options.imports ?? [],
      providers: [
        {
          provide: PURCHASE_PUBLISHER_OPTIONS,
          useFactory: options.useFactory,
          inject: options.inject ?? [],
        },
        ...providers,
      ],
      exports: exported,
    };
  }
}
