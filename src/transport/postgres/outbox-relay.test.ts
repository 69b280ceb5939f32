import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import pg from "pg";
import { SERVERS, serverSkipReason } from "../../../tests/support/servers.ts";
import { createEnvelope, type Envelope } from "../../core/envelope.ts";
import { isFerryError } from "../../core/errors.ts";
import { MemoryTransport } from "../memory/memory-transport.ts";
import { OutboxRelay } from "./outbox-relay.ts";
import { PostgresTransport } from "./postgres-transport.ts";

const skip = await serverSkipReason("postgres");
const schema = `ferry_t_relay_${process.pid}_${Date.now().toString(36)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const msg = (channel: string) => createEnvelope({ name: "outbox.test", channel, payload: { n: Math.random() } });

async function until(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(20);
  }
  return check();
}

if (skip) {
  it("outbox relay", { skip }, () => {});
} else {
  describe("outbox relay", () => {
    const pool = new pg.Pool({ connectionString: SERVERS.postgres, max: 3 });
    after(async () => {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    });
    const open = () => PostgresTransport.open({ connectionString: SERVERS.postgres, schema, poolSize: 3 });

    async function inTransaction(source: PostgresTransport, messages: Envelope[], commit: boolean): Promise<void> {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        await source.sendWithin(client, messages);
        await client.query(commit ? "COMMIT" : "ROLLBACK");
      } finally {
        client.release();
      }
    }

    it("forwards committed messages with their ids, and nothing rolled back", async () => {
      const source = await open();
      const target = new MemoryTransport();
      const relay = new OutboxRelay({ source, target, channels: ["out-a"], mapChannel: (c) => `far-${c}`, waitMs: 2000 });
      relay.start();
      try {
        const kept = [msg("out-a"), msg("out-a")];
        const dropped = msg("out-a");
        await inTransaction(source, [dropped], false);
        await inTransaction(source, kept, true);
        assert.ok(await until(async () => relay.relayed === 2), "both committed messages are relayed");
        const got = await target.receive({ channels: ["far-out-a"], max: 10, leaseMs: 1000, waitMs: 0 });
        assert.deepEqual(got.map((d) => d.message.id).sort(), kept.map((m) => m.id).sort());
        for (const d of got) assert.deepEqual(d.message.payload, kept.find((k) => k.id === d.message.id)!.payload);
        assert.equal(await target.get(dropped.id), null);
        assert.equal((await source.get(kept[0]!.id))?.state, "completed", "acked in the outbox after the target stored it");
      } finally {
        await relay.stop();
        await source.close();
        await target.close();
      }
    });

    it("a relay that dies between send and ack re-sends after the lease, and the target stores it once", async () => {
      const source = await open();
      const target = new MemoryTransport();
      try {
        const m = msg("out-b");
        await source.send([m]);
        // The crashed relay: leased, forwarded, never acked.
        const [d] = await source.receive({ channels: ["out-b"], max: 10, leaseMs: 200, waitMs: 0 });
        assert.ok(d);
        await target.send([{ ...d.message, attempt: 0 }]);
        const relay = new OutboxRelay({ source, target, channels: ["out-b"] });
        assert.equal(await relay.relayOnce(0), 0, "the lease still holds");
        assert.equal(await relay.relayOnce(3000), 1, "re-sent once the lease ended");
        const counts = await target.counts();
        assert.deepEqual(counts.map((c) => [c.channel, c.waiting]), [["out-b", 1]], "the re-sent id was a duplicate");
        assert.equal((await source.get(m.id))?.state, "completed");
      } finally {
        await source.close();
        await target.close();
      }
    });

    it("a failing target keeps messages in the outbox until it recovers", async () => {
      const source = await open();
      const target = new MemoryTransport();
      let failures = 1;
      const flaky = Object.assign(Object.create(target) as MemoryTransport, {
        send: (messages: readonly Envelope[]) => (failures-- > 0 ? Promise.reject(new Error("target down")) : target.send(messages)),
      });
      const errors: Error[] = [];
      const relay = new OutboxRelay({ source, target: flaky, channels: ["out-c"], retryDelayMs: 20, waitMs: 1000, onError: (e) => errors.push(e) });
      try {
        const m = msg("out-c");
        await source.send([m]);
        relay.start();
        assert.ok(await until(async () => relay.relayed === 1));
        assert.deepEqual(errors.map((e) => e.message), ["target down"]);
        assert.equal((await target.get(m.id))?.state, "waiting");
        assert.equal((await source.get(m.id))?.message.attempt, 1, "a failed forward uses no attempt");
      } finally {
        await relay.stop();
        await source.close();
        await target.close();
      }
    });

    it("refuses bad options", async () => {
      const source = await open();
      try {
        assert.throws(() => new OutboxRelay({ source, target: new MemoryTransport(), channels: [] }), (e: unknown) => isFerryError(e, "INVALID_OPTION"));
        assert.throws(() => new OutboxRelay({ source, target: new MemoryTransport(), channels: ["bad channel"] }), (e: unknown) => isFerryError(e, "INVALID_NAME"));
      } finally {
        await source.close();
      }
    });
  });
}
