/** @flashsale/publisher/nest: the publisher as a NestJS module, and its health indicator for @nestjs/terminus. */
export {
  PURCHASE_PUBLISHER_OPTIONS,
  PurchasePublisherModule,
  type PurchasePublisherModuleAsyncOptions,
  type PurchasePublisherModuleOptions,
} from './purchase-publisher.module.js';
export { PurchasePublisherHealthIndicator } from './purchase-publisher.health.js';
export { PurchasePublisher } from '../purchase-publisher.js';
