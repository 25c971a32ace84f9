import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { Body, Controller, HttpCode, Inject, Param, Post, Query, Res } from '@nestjs/common';
import { PurchasePublisher } from '@flashsale/publisher/nest';
import { API_SETTINGS, type ApiSettings } from '../settings.js';
import { answerForError } from './publish-error.answer.js';
import { type PurchaseToPublish, readPurchaseRequest, readWaitFlag } from './purchase-request.js';

/**
 * `POST /sales/:saleId/purchases` with `{ userId }`: the API stamps the purchase and publishes it to the
 * fleet's queue. 202 once the broker confirmed it (it is on disk, the order will follow); with `?wait=true`,
 * the answer waits for the order: 201 confirmed, 200 duplicate, 422 rejected, 504 no outcome in time.
 */
@Controller('sales/:saleId/purchases')
export class PurchasesController {
  constructor(
    private readonly publisher: PurchasePublisher,
    @Inject(API_SETTINGS) private readonly settings: ApiSettings,
  ) {}

  @Post()
  @HttpCode(202)
  async purchase(
    @Param('saleId') saleId: string,
    @Body() body: unknown,
    @Query('wait') wait: unknown,
    @Res({ passthrough: true }) response: ServerResponse,
  ): Promise<object> {
    const waitForOrder = readWaitFlag(wait);
    const request = readPurchaseRequest(saleId, body, new Date());
    const problems = [
      ...(request.ok ? [] : request.problems),
      ...(waitForOrder === undefined ? ['wait must be true or false'] : []),
    ];
    if (!request.ok || waitForOrder === undefined) {
      response.statusCode = 400;
      return { statusCode: 400, error: 'Bad Request', message: 'invalid purchase', reasons: problems };
    }
    try {
      return waitForOrder
        ? await this.purchaseAndWait(request.purchase, response)
        : await this.publish(request.purchase);
    } catch (error) {
      const answer = answerForError(error);
      if (!answer) throw error;
      response.statusCode = answer.status;
      if (answer.retryAfter) response.setHeader('Retry-After', String(this.settings.RETRY_AFTER_S));
      return answer.body;
    }
  }

  private async publish(purchase: PurchaseToPublish) {
    const messageId = randomUUID();
    await this.publisher.publish(purchase, { messageId });
    return { ...shown(purchase), messageId };
  }

  private async purchaseAndWait(purchase: PurchaseToPublish, response: ServerResponse) {
    const outcome = await this.publisher.request(purchase, {
      timeoutMs: this.settings.ORDER_WAIT_TIMEOUT_MS,
    });
    response.statusCode = outcome.status === 'confirmed' ? 201 : 200;
    return {
      ...shown(purchase),
      status: outcome.status,
      orderId: outcome.orderId,
      committedAt: outcome.committedAt,
    };
  }
}

const shown = (purchase: PurchaseToPublish) => ({
  saleId: purchase.saleId,
  userId: purchase.userId,
  timestamp: purchase.timestamp.toISOString(),
});
