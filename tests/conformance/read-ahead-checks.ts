/**
 * Checks for transports that read ahead for a consumer loop (PostgreSQL, Redis): not every
 * transport does, so these sit beside the conformance suite rather than in it.
 */
import assert from "node:assert/strict";
import { createEnvelope, type Envelope } from "../../src/core/envelope.ts";
import type { Inspectable, Transport } from "../../src/transport/types.ts";

/**
 * A consumer loop reads ahead once it finds a backlog, is served from what it holds, and an
 * abort gives the held messages back: due as before, in their places, with no attempt used.
 * Sends 12 messages to `channel`, which must be empty.
 */
export async function checkReadAheadAndAbort(t: Transport & Inspectable, channel: string): Promise<void> {
  const sent: Envelope[] = Array.from({ length: 12 }, (_, i) => createEnvelope({ name: "ahead.test", channel, payload: { i } }));
  await t.send(sent);
  const ac = new AbortController();
  const loop = { channels: [channel], max: 2, leaseMs: 30_000, waitMs: 1000, signal: ac.signal };
  const first = await t.receive(loop);
  const second = await t.receive(loop);
  assert.equal(first.length + second.length, 4);
  const active = () => t.counts().then((c) => c.find((x) => x.channel === channel)?.active ?? 0);
  assert.ok((await active()) > 4, "the second receive found a backlog and leased ahead");
  const third = await t.receive(loop);
  assert.equal(third.length, 2, "served from what was read ahead");
  const handed = [...first, ...second, ...third];
  assert.deepEqual(handed.map((d) => d.message.id), sent.slice(0, 6).map((m) => m.id), "in sending order");
  ac.abort();
  for (let i = 0; i < 50 && (await active()) > 6; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await active(), 6, "only the handed-out leases stay active");
  assert.deepEqual(await t.ack(handed.map((d) => ({ id: d.message.id, token: d.token }))), handed.map(() => true));
  const rest = await t.receive({ channels: [channel], max: 50, leaseMs: 30_000, waitMs: 0 });
  assert.deepEqual(rest.map((d) => d.message.id), sent.slice(6).map((m) => m.id), "released messages kept their places");
  assert.deepEqual(rest.map((d) => d.message.attempt), rest.map(() => 1), "released messages used no attempt");
}
