import {
  InvalidPurchaseError,
  InvalidReplyError,
  PublisherBackpressureError,
  PublisherClosedError,
  PublishNotConfirmedError,
  PurchaseRejectedError,
  PurchaseReplyTimeoutError,
} from '@flashsale/publisher';

/** The HTTP answer to a purchase the publisher did not take, or whose order did not come. */
export interface ErrorAnswer {
  status: 400 | 422 | 502 | 503 | 504;
  /** Seconds for `Retry-After`: the client may send the same purchase again then (a duplicate is harmless). */
  retryAfter: boolean;
  body: { statusCode: number; error: string; message: string; reason?: string; reasons?: string[] };
}

const unavailable = (message: string, reason: string): ErrorAnswer => ({
  status: 503,
  retryAfter: true,
  body: { statusCode: 503, error: 'Service Unavailable', message, reason },
});

/**
 * How each error of the publisher reaches the client, in one place (its table-driven test:
 * test/example-api-answers.test.ts). Undefined for an error that is no publisher's: it stays a 500.
 */
export function answerForError(error: unknown): ErrorAnswer | undefined {
  if (error instanceof PublisherBackpressureError) {
    return unavailable('too many purchases await the broker; retry later', 'backpressure');
  }
  if (error instanceof PublisherClosedError) {
    return unavailable('the API is shutting down; retry later', 'shutting-down');
  }
  if (error instanceof PublishNotConfirmedError) {
    // Not confirmed is not refused: the purchase may be in the queue anyway, and sending it again is safe.
    return unavailable('the broker did not confirm the purchase; retry later', error.reason);
  }
  if (error instanceof InvalidPurchaseError) {
    return {
      status: 400,
      retryAfter: false,
      body: { statusCode: 400, error: 'Bad Request', message: 'invalid purchase', reasons: error.problems },
    };
  }
  if (error instanceof PurchaseRejectedError) {
    return {
      status: 422,
      retryAfter: false,
      body: {
        statusCode: 422,
        error: 'Unprocessable Entity',
        message: `the worker rejected the purchase: ${error.reason}`,
        reason: error.code,
      },
    };
  }
  if (error instanceof PurchaseReplyTimeoutError) {
    // The purchase is in the queue: its order may still come. Asking again with the same user is safe.
    return {
      status: 504,
      retryAfter: false,
      body: {
        statusCode: 504,
        error: 'Gateway Timeout',
        message: 'the purchase was queued, but its outcome did not come in time',
        reason: 'reply-timeout',
      },
    };
  }
  if (error instanceof InvalidReplyError) {
    // The purchase is in the queue and may have its order; only its reply could not be read.
    return {
      status: 502,
      retryAfter: false,
      body: {
        statusCode: 502,
        error: 'Bad Gateway',
        message: "the purchase was queued, but the worker's reply could not be read",
        reason: 'unreadable-reply',
      },
    };
  }
  return undefined;
}
