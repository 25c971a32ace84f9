import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { PURCHASE_PATTERN } from '../broker/purchase.transport.js';
import type { Outcome } from './outcome.js';
import { type IncomingMessage, PurchasePipeline } from './purchase.pipeline.js';

/** Entry of the purchase path in the NestJS microservice model: the transport hands every message here. */
@Controller()
export class PurchaseController {
  constructor(private readonly pipeline: PurchasePipeline) {}

  @EventPattern(PURCHASE_PATTERN)
  onPurchase(@Payload() message: IncomingMessage): Promise<Outcome> {
    return this.pipeline.process(message);
  }
}
