/**
 * A child process for the cross-process SQLite tests, driven over IPC.
 *
 *   sqlite-child.ts <file> drain <channel>   receive and ack until told "stop"; reports {type:"got", ids}
 *   sqlite-child.ts <file> send <channel>    send one message when told "send"; reports {type:"sent", id}
 *   sqlite-child.ts <file> hold <channel>    lease everything due (3 s lease), report {type:"held", ids}, then hang
 *   sqlite-child.ts <file> produce <channel> send batches of 20 forever; reports each committed batch {type:"sent", ids}
 *
 * The safety re-check is set to a minute, so a receive waiting here only wakes
 * early through the cross-process signal (the file watch).
 */
import { createEnvelope } from "../../src/core/envelope.ts";
import { SqliteTransport } from "../../src/transport/sqlite/sqlite-transport.ts";

const [path, mode, channel] = process.argv.slice(2) as [string, string, string];
const send = (message: unknown) => process.send!(message);
const transport = new SqliteTransport({ path, recheckMs: 60_000 });
const stop = new AbortController();

process.on("disconnect", () => stop.abort());
process.on("message", (msg: { type: string }) => {
  if (msg.type === "stop") stop.abort();
  if (msg.type === "send") {
    const m = createEnvelope({ name: "processes.task", channel, payload: { from: process.pid } });
    void transport.send([m]).then(() => send({ type: "sent", id: m.id }));
  }
});

async function drain(): Promise<void> {
  while (!stop.signal.aborted) {
    const got = await transport.receive({ channels: [channel], max: 10, leaseMs: 60_000, waitMs: 30_000, signal: stop.signal });
    if (got.length === 0) continue;
    const acked = await transport.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
    if (acked.includes(false)) throw new Error("an ack was refused while no lease could have expired");
    send({ type: "got", ids: got.map((d) => d.message.id), attempts: got.map((d) => d.message.attempt) });
  }
}

async function hold(): Promise<void> {
  const got = await transport.receive({ channels: [channel], max: 1000, leaseMs: 3000, waitMs: 10_000, signal: stop.signal });
  send({ type: "held", ids: got.map((d) => d.message.id) });
  await new Promise((resolve) => stop.signal.addEventListener("abort", resolve, { once: true }));
}

async function produce(): Promise<void> {
  for (let b = 0; !stop.signal.aborted; b++) {
    const batch = Array.from({ length: 20 }, (_, i) => createEnvelope({ name: "processes.task", channel, payload: { b, i } }));
    await transport.send(batch);
    send({ type: "sent", ids: batch.map((m) => m.id) });
    await new Promise((resolve) => setImmediate(resolve));
  }
}

send({ type: "ready", pid: process.pid });
if (mode === "drain") await drain();
else if (mode === "hold") await hold();
else if (mode === "produce") await produce();
else await new Promise((resolve) => stop.signal.addEventListener("abort", resolve, { once: true }));
await transport.close();
process.disconnect?.();
