/** The worker is shutting down: the message is left unacked for redelivery, without a back-off. */
export class ShutdownInterruptedError extends Error {
  override readonly name = 'ShutdownInterruptedError';
}

/**
 * The worker's one shutdown signal: aborted when a graceful shutdown starts, it ends every wait at once (the
 * back-off of a message before its requeue, of a batch before its next attempt, the database probes), so the
 * drain waits only for work that is really running. What was waiting is left unacked and comes back.
 */
export class ShutdownSignal {
  private readonly controller = new AbortController();

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(reason: string): void {
    this.controller.abort(new Error(reason));
  }
}
