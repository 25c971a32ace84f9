import type { MessageProperties, Options } from 'amqplib';

/**
 * The properties of a received message to keep when it is published again (to the dead-letter queue, back to
 * its queue for a classic retry, or replayed from the DLQ), as persistent. Left out: `userId` (the broker
 * refuses a publish whose user-id is not the connection's user), `expiration` (a dead-letter copy must not
 * expire) and `replyTo`; headers are the caller's to set.
 */
export function republishedProperties(properties: MessageProperties): Options.Publish {
  const kept: Options.Publish = {
    contentType: properties.contentType as string | undefined,
    contentEncoding: properties.contentEncoding as string | undefined,
    priority: properties.priority as number | undefined,
    correlationId: properties.correlationId as string | undefined,
    messageId: properties.messageId as string | undefined,
    timestamp: properties.timestamp as number | undefined,
    type: properties.type as string | undefined,
    appId: properties.appId as string | undefined,
  };
  const present = Object.fromEntries(Object.entries(kept).filter(([, value]) => value !== undefined));
  return { ...present, persistent: true };
}
