/**
 * Picking given messages out of a dead-letter queue. RabbitMQ cannot fetch a
 * message by id, so the queue is read through once on a channel of its own:
 * wanted messages are handed to `take` (which settles them), the others are held
 * unacked until the end of the pass and then returned in one `nackAll`.
 * Dead-letter queues are small and this runs only on an admin action.
 */
import type { ChannelModel, ConsumeMessage, GetMessage } from "amqplib";

/**
 * Read `queue` once; for each message whose `messageId` is in `ids`, call
 * `take(message, ack)`. Returns the ids taken.
 */
export async function scanDeadQueue(
  model: ChannelModel,
  queue: string,
  ids: ReadonlySet<string>,
  take: (message: GetMessage | ConsumeMessage, ack: () => void) => Promise<boolean>,
): Promise<string[]> {
  const channel = await model.createChannel();
  channel.on("error", () => {});
  const taken: string[] = [];
  try {
    const { messageCount } = await channel.checkQueue(queue);
    for (let seen = 0; seen < messageCount && taken.length < ids.size; seen++) {
      const message = await channel.get(queue, { noAck: false });
      if (message === false) break;
      const id = message.properties.messageId as string | undefined;
      if (id !== undefined && ids.has(id) && !taken.includes(id) && (await take(message, () => channel.ack(message)))) taken.push(id);
    }
    channel.nackAll(true);
    return taken;
  } finally {
    await channel.close().catch(() => {});
  }
}
