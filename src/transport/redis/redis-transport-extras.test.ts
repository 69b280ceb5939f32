/**
 * Redis-specific behaviour beyond the conformance suite: restarts, reconnects,
 * server-setting warnings, retention, pause, URLs. Against the real server,
 * each test under its own key prefix, deleted at the end.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { VirtualClock } from "../../core/clock.ts";
import { createEnvelope, type Envelope } from "../../core/envelope.ts";
import { isFerryError } from "../../core/errors.ts";
import { checkReadAheadAndAbort } from "../../../tests/conformance/read-ahead-checks.ts";
import { SERVERS, serverSkipReason } from "../../../tests/support/servers.ts";
import { createTransport } from "../registry.ts";
import { readServerSettings, serverWarnings } from "./redis-health.ts";
import { optionsFromUrl } from "./redis-options.ts";
import { SCRIPT_NAMES, scriptSources } from "./redis-scripts.ts";
import type { Delivery } from "../types.ts";
import { RedisTransport, type RedisTransportOptions } from "./redis-transport.ts";
import { deleteKeys, uniquePrefix } from "./redis-test-support.ts";

const skip = await serverSkipReason("redis");
const base = uniquePrefix("extra");
let n = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const msg = (channel: string, init: { runAt?: number; priority?: number } = {}): Envelope => createEnvelope({ name: "redis.test", channel, payload: { n: n++ }, ...init });

describe("redis scripts", () => {
  it("each script carries every lib.lua helper it calls, and not the ones it does not", () => {
    const sources = scriptSources();
    const helpers = ["now_ms", "int", "next_attempt", "rescore", "zbatch", "zbatch_add", "zbatch_flush", "zrem_many", "enqueue", "delete_message", "delete_messages", "notify", "append_error", "release_dedup", "trim"];
    for (const name of SCRIPT_NAMES) {
      const src = sources.get(name)!;
      for (const h of helpers) {
        const defined = new RegExp(`^local function ${h}\\(`, "m").test(src);
        const called = new RegExp(`\\b${h}\\(`).test(src.replace(new RegExp(`^local function ${h}\\(`, "m"), ""));
        assert.equal(defined, called, `${name}.lua: ${h} ${called ? "called but not defined" : "defined but not called"}`);
      }
    }
    // The send script builds no attempt table and no helpers it does not call.
    assert.doesNotMatch(sources.get("send")!, /NEXT_ATTEMPT =|local function trim\(/);
  });
});

describe("redis transport: beyond conformance", { skip }, () => {
  const open: RedisTransport[] = [];
  let admin: Redis | undefined;
  const transport = async (prefix: string, options: RedisTransportOptions = {}) => {
    const t = await RedisTransport.open({ url: SERVERS.redis, prefix, onWarning: () => {}, ...options });
    open.push(t);
    return t;
  };
  const adminClient = async () => {
    if (!admin) {
      admin = new Redis(SERVERS.redis, { lazyConnect: true });
      await admin.connect();
    }
    return admin;
  };
  after(async () => {
    await Promise.all(open.map((t) => t.close()));
    await admin?.quit();
    await deleteKeys(SERVERS.redis, base);
  });

  it("delayed messages survive a restart of the transport (they are data, not timers)", async () => {
    const prefix = `${base}-restart`;
    const first = await transport(prefix);
    const runAt = Date.now() + 500;
    const m = msg("delayed", { runAt });
    await first.send([m]);
    await first.close();
    const second = await transport(prefix);
    assert.deepEqual(await second.receive({ channels: ["delayed"], max: 1, leaseMs: 30_000, waitMs: 0 }), [], "not due yet");
    const [d] = await second.receive({ channels: ["delayed"], max: 1, leaseMs: 30_000, waitMs: 5000 });
    assert.equal(d?.message.id, m.id);
    assert.ok(Date.now() >= runAt - 2, "not delivered early");
    // A lease taken before a restart is still fenced and still recovered after it.
    await second.close();
    const third = await transport(prefix);
    assert.deepEqual(await third.ack([{ id: m.id, token: "not-the-token" }]), [false]);
    assert.deepEqual(await third.ack([{ id: m.id, token: d!.token }]), [true]);
  });

  it("runs its scripts again after the server forgets them (SCRIPT FLUSH, or a restart)", async () => {
    const t = await transport(`${base}-flush`);
    const before = msg("f");
    await t.send([before]);
    await (await adminClient()).script("FLUSH");
    // The single send, the batch send and receive each fall back to EVAL, which loads the script again.
    const single = msg("f");
    assert.deepEqual(await t.send([single]), [{ id: single.id, deduplicated: false }]);
    await (await adminClient()).script("FLUSH");
    const batch = [msg("f"), msg("f")];
    assert.deepEqual(await t.send(batch), batch.map((m) => ({ id: m.id, deduplicated: false })));
    await (await adminClient()).script("FLUSH");
    const got = await t.receive({ channels: ["f"], max: 10, leaseMs: 30_000, waitMs: 0 });
    assert.deepEqual(got.map((d) => d.message.id), [before, single, ...batch].map((m) => m.id));
  });

  it("reconnects after its connection is killed, and says so", async () => {
    const name = `${base}-kill`.replace(/[^A-Za-z0-9-]/g, "");
    const warnings: string[] = [];
    const t = await transport(`${base}-kill`, { onWarning: (w) => warnings.push(w), redis: { connectionName: name } });
    await t.send([msg("k")]);
    const redis = await adminClient();
    const list = (await redis.client("LIST")) as string;
    const ids = list.split("\n").filter((line) => line.includes(` name=${name} `)).map((line) => /^id=(\d+)/.exec(line)?.[1]);
    assert.equal(ids.length, 1, "exactly our command connection carries our name");
    assert.equal(await redis.client("KILL", "ID", ids[0]!), 1);
    // Work goes on through the reconnect.
    const got = await t.receive({ channels: ["k"], max: 10, leaseMs: 30_000, waitMs: 3000 });
    assert.equal(got.length, 1);
    assert.deepEqual(await t.ack(got.map((d) => ({ id: d.message.id, token: d.token }))), [true]);
    assert.ok(warnings.some((w) => /lost the command connection/.test(w)), `a loss warning, got ${JSON.stringify(warnings)}`);
    assert.ok(warnings.some((w) => /reconnected the command connection/.test(w)), `a reconnect warning, got ${JSON.stringify(warnings)}`);
  });

  it("a waiting receive survives its blocking connection being killed", async () => {
    const name = `${base}-killwait`.replace(/[^A-Za-z0-9-]/g, "");
    const t = await transport(`${base}-killwait`, { redis: { connectionName: name } });
    const sender = await transport(`${base}-killwait`);
    const pending = t.receive({ channels: ["w"], max: 1, leaseMs: 30_000, waitMs: 8000 });
    await sleep(100);
    const redis = await adminClient();
    const list = (await redis.client("LIST")) as string;
    // Kill only our own waiter: its connection carries our name plus "-wait".
    const line = list.split("\n").find((l) => l.includes(` name=${name}-wait `));
    assert.ok(line, "the waiter has its own named connection");
    assert.match(line, /cmd=blpop/, "the waiter is blocked in BLPOP");
    const ownId = /^id=(\d+)/.exec(line)![1]!;
    await redis.client("KILL", "ID", ownId);
    await sleep(100);
    const m = msg("w");
    await sender.send([m]);
    const got = await pending;
    assert.equal(got[0]?.message.id, m.id);
  });

  it("warns when the server may evict or lose messages", async () => {
    const at = "127.0.0.1:6379";
    assert.deepEqual(serverWarnings({ maxmemoryPolicy: "noeviction", appendonly: "yes", save: "" }, at), []);
    assert.deepEqual(serverWarnings({ maxmemoryPolicy: "noeviction", appendonly: "yes", save: "3600 1" }, at), []);
    const evict = serverWarnings({ maxmemoryPolicy: "allkeys-lru", appendonly: "yes", save: "" }, at);
    assert.equal(evict.length, 1);
    assert.match(evict[0]!, /allkeys-lru.*evict.*noeviction/);
    const none = serverWarnings({ maxmemoryPolicy: "noeviction", appendonly: "no", save: "" }, at);
    assert.equal(none.length, 1);
    assert.match(none[0]!, /no persistence.*restart loses/);
    assert.match(serverWarnings({ maxmemoryPolicy: "noeviction", appendonly: "no", save: "3600 1" }, at)[0]!, /RDB snapshots/);
    assert.match(serverWarnings({}, at)[0]!, /could not read maxmemory-policy/);
    // Opening against the real server warns exactly as its settings call for.
    const warnings: string[] = [];
    const t = await transport(`${base}-warn`, { onWarning: (w) => warnings.push(w) });
    const expected = serverWarnings(await readServerSettings(await adminClient()), t.target);
    assert.deepEqual(warnings, expected);
    const quiet: string[] = [];
    await transport(`${base}-warn`, { onWarning: (w) => quiet.push(w), checkServer: false });
    assert.deepEqual(quiet, []);
  });

  it("retention bounds completed records by count and by age", async () => {
    const byCount = await transport(`${base}-retain`, { retention: { completed: { count: 5, age: Infinity } } });
    const sent = Array.from({ length: 30 }, () => msg("r"));
    await byCount.send(sent);
    for (let i = 0; i < 3; i++) {
      const got = await byCount.receive({ channels: ["r"], max: 10, leaseMs: 30_000, waitMs: 0 });
      await byCount.ack(got.map((d) => ({ id: d.message.id, token: d.token })));
    }
    const counts = (await byCount.counts()).find((c) => c.channel === "r");
    assert.equal(counts?.completed, 5);
    const kept = await byCount.list({ state: "completed", channel: "r", limit: 100 });
    assert.equal(kept.length, 5);
    const redis = await adminClient();
    const stored = await Promise.all(sent.map((m) => redis.exists(`${base}-retain:m:${m.id}`, `${base}-retain:h:${m.id}`)));
    assert.equal(stored.filter((x) => x === 2).length, 5, "the records themselves are deleted, not just unlisted");
    assert.equal(stored.filter((x) => x === 0).length, 25, "envelope and state both deleted");

    const byAge = await transport(`${base}-retain-age`, { retention: { completed: { count: Infinity, age: 200 } } });
    await byAge.send([msg("a"), msg("a")]);
    const first = await byAge.receive({ channels: ["a"], max: 1, leaseMs: 30_000, waitMs: 0 });
    await byAge.ack(first.map((d) => ({ id: d.message.id, token: d.token })));
    await sleep(300);
    const second = await byAge.receive({ channels: ["a"], max: 1, leaseMs: 30_000, waitMs: 0 });
    await byAge.ack(second.map((d) => ({ id: d.message.id, token: d.token })));
    assert.equal(await byAge.get(first[0]!.message.id), null, "the old record is gone");
    assert.equal((await byAge.get(second[0]!.message.id))?.state, "completed");
  });

  it("the sweep applies retention to channels no ack touches any more, and forgets channels left with nothing", async () => {
    const prefix = `${base}-sweep`;
    const t = await transport(prefix, { retention: { completed: { count: Infinity, age: 200 }, dead: { count: 1, age: Infinity } } });
    await t.send([msg("quiet"), msg("quiet"), msg("dl"), msg("dl"), msg("live"), msg("pz")]);
    const quiet = await t.receive({ channels: ["quiet"], max: 2, leaseMs: 30_000, waitMs: 0 });
    assert.deepEqual(await t.ack(quiet.map((d) => ({ id: d.message.id, token: d.token }))), [true, true]);
    const dl = await t.receive({ channels: ["dl"], max: 2, leaseMs: 30_000, waitMs: 0 });
    // One dead-letter call per message: the second call's trim keeps one, so the sweep has nothing to do there.
    for (const d of dl) await t.deadLetter([{ id: d.message.id, token: d.token, error: { at: Date.now(), attempt: 1, code: "X", message: "x" } }]);
    const pz = await t.receive({ channels: ["pz"], max: 1, leaseMs: 30_000, waitMs: 0 });
    await t.ack(pz.map((d) => ({ id: d.message.id, token: d.token })));
    await t.pause("pz");
    assert.equal(await t.enforceRetention(), 0, "nothing past its rules yet");
    await sleep(300);
    // No ack on "quiet" since: only the sweep can delete its records now.
    assert.equal(await t.enforceRetention(), 3, "quiet's two records and pz's one passed the age limit");
    assert.equal(await t.get(quiet[0]!.message.id), null);
    const channels = (await (await adminClient()).smembers(`${prefix}:channels`)).sort();
    assert.deepEqual(channels, ["dl", "live", "pz"], "quiet had nothing left and is forgotten; live has a waiting message, dl a dead one, pz is paused");
    assert.deepEqual((await t.counts()).map((c) => c.channel).sort(), ["dl", "live", "pz"]);
    await t.send([msg("quiet")]);
    assert.ok((await t.counts()).some((c) => c.channel === "quiet" && c.waiting === 1), "a send brings the channel back");
  });

  it("a completed rule that keeps nothing deletes each message in its ack, fenced as before", async () => {
    const t = await transport(`${base}-keep0`, { retention: { completed: { count: 0 } } });
    const sent = [msg("k"), msg("k"), msg("k")];
    await t.send(sent);
    const got = await t.receive({ channels: ["k"], max: 3, leaseMs: 30_000, waitMs: 0 });
    const [a, b, c] = got;
    assert.deepEqual(await t.ack([{ id: a!.message.id, token: `${a!.token}9` }]), [false], "a stale token is refused");
    assert.deepEqual(await t.ack([{ id: a!.message.id, token: a!.token, result: { ok: 1 } }, { id: b!.message.id, token: b!.token, status: "cancelled" }]), [true, true]);
    assert.deepEqual(await t.ack([{ id: a!.message.id, token: a!.token }]), [false], "acked once");
    const redis = await adminClient();
    for (const d of [a!, b!]) assert.equal(await redis.exists(`${base}-keep0:m:${d.message.id}`, `${base}-keep0:h:${d.message.id}`), 0, "envelope and state deleted");
    assert.deepEqual(await redis.keys(`${base}-keep0:s:*`), [], "no finished set written");
    assert.equal((await t.counts()).find((x) => x.channel === "k")?.active, 1);
    await t.deadLetter([{ id: c!.message.id, token: c!.token, error: { at: Date.now(), attempt: 1, code: "X", message: "x" } }]);
    assert.equal((await t.get(c!.message.id))?.state, "dead", "dead records keep their own rule");
  });

  it("prune deletes finished records before a time", async () => {
    const t = await transport(`${base}-prune`);
    await t.send([msg("p"), msg("p")]);
    const got = await t.receive({ channels: ["p"], max: 2, leaseMs: 30_000, waitMs: 0 });
    await t.ack([{ id: got[0]!.message.id, token: got[0]!.token }]);
    await t.deadLetter([{ id: got[1]!.message.id, token: got[1]!.token, error: { at: Date.now(), attempt: 1, code: "X", message: "x" } }]);
    assert.equal(await t.prune({ before: Date.now() - 60_000 }), 0);
    assert.equal(await t.prune({ before: Date.now() + 1000 }), 1, "completed only by default");
    assert.equal(await t.get(got[0]!.message.id), null);
    assert.equal((await t.get(got[1]!.message.id))?.state, "dead");
    assert.equal(await t.prune({ before: Date.now() + 1000, states: ["dead"] }), 1);
  });

  it("a paused channel keeps its messages and delivers none; resume wakes a waiting receive", async () => {
    const t = await transport(`${base}-pause`);
    await t.pause("pz");
    assert.deepEqual(await t.paused(), ["pz"]);
    await t.send([msg("pz")]);
    assert.deepEqual(await t.receive({ channels: ["pz"], max: 1, leaseMs: 30_000, waitMs: 0 }), []);
    const pending = t.receive({ channels: ["pz"], max: 1, leaseMs: 30_000, waitMs: 8000 });
    await sleep(100);
    const started = Date.now();
    await t.resume("pz");
    assert.equal((await pending).length, 1);
    assert.ok(Date.now() - started < 4000, "resume woke the receive");
    assert.deepEqual(await t.paused(), []);
  });

  it("a consumer loop reads ahead; an abort gives the held messages back, due as before, with no attempt used", async () => {
    await checkReadAheadAndAbort(await transport(`${base}-ahead`), "ra");
  });

  it("a one-off receive leases exactly what it asks for; close and pause give read-ahead back", async () => {
    const t = await transport(`${base}-ahead2`);
    const other = await transport(`${base}-ahead2`);
    await t.send(Array.from({ length: 10 }, () => msg("rc")));
    await t.send(Array.from({ length: 10 }, () => msg("rp")));
    const counts = async (ch: string) => (await other.counts()).find((x) => x.channel === ch);
    assert.equal((await t.receive({ channels: ["rc"], max: 1, leaseMs: 30_000, waitMs: 0 })).length, 1);
    assert.equal((await counts("rc"))?.active, 1, "no signal, no read-ahead");
    const loop = (ch: string) => ({ channels: [ch], max: 1, leaseMs: 30_000, waitMs: 1000, signal: new AbortController().signal });
    await t.receive(loop("rp"));
    await t.receive(loop("rp"));
    assert.ok(((await counts("rp"))?.active ?? 0) > 2, "read ahead on rp");
    await t.pause("rp");
    for (let i = 0; i < 50 && ((await counts("rp"))?.active ?? 0) > 2; i++) await sleep(20);
    assert.equal((await counts("rp"))?.active, 2, "pausing rp gave back what was held for it");
    await t.receive(loop("rc"));
    await t.receive(loop("rc"));
    assert.ok(((await counts("rc"))?.active ?? 0) > 3, "read ahead on rc");
    await t.close();
    const c = await counts("rc");
    assert.equal(c?.active, 3, "close gave the held messages back before disconnecting");
    assert.equal(c?.waiting, 7);
  });

  it("a release (a snooze to the message's own due time) is fenced: a stale token or a message no longer active is left alone", async () => {
    const t = await transport(`${base}-release`);
    await t.send([msg("rl"), msg("rl")]);
    const [a, b] = await t.receive({ channels: ["rl"], max: 2, leaseMs: 30_000, waitMs: 0 });
    assert.deepEqual(await t.ack([{ id: b!.message.id, token: b!.token }]), [true]);
    const release = (items: Array<[Delivery, string]>) => t.retry(items.map(([d, token]) => ({ id: d.message.id, token, runAt: d.message.runAt, attemptUsed: false })));
    assert.deepEqual(await release([[a!, "1.1"], [b!, b!.token]]), [false, false]);
    assert.equal((await t.get(a!.message.id))?.state, "active");
    assert.equal((await t.get(b!.message.id))?.state, "completed");
    assert.deepEqual(await release([[a!, a!.token]]), [true]);
    const again = await t.receive({ channels: ["rl"], max: 2, leaseMs: 30_000, waitMs: 0 });
    assert.deepEqual(again.map((d) => [d.message.id, d.message.attempt]), [[a!.message.id, 1]]);
  });

  it("error history keeps the first and the newest", async () => {
    const t = await transport(`${base}-errors`);
    const m = msg("e");
    await t.send([m]);
    for (let attempt = 1; attempt <= 12; attempt++) {
      const [d] = await t.receive({ channels: ["e"], max: 1, leaseMs: 30_000, waitMs: 0 });
      assert.equal(d?.message.attempt, attempt);
      await t.retry([{ id: m.id, token: d!.token, runAt: 0, attemptUsed: true, error: { at: attempt, attempt, code: "HANDLER_FAILED", message: `line\nbreak ${attempt}` } }]);
    }
    const rec = await t.get(m.id);
    assert.deepEqual(rec?.errors.map((e) => e.attempt), [1, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.equal(rec?.errors[0]?.message, "line\nbreak 1");
  });

  it("an idle receive blocks instead of polling", async () => {
    const prefix = `${base}-idle`;
    const t = await transport(prefix);
    const monitor = (await adminClient()).duplicate();
    const seen: string[] = [];
    const feed = await monitor.monitor();
    feed.on("monitor", (_time: string, args: string[]) => {
      if (args.some((a) => a.startsWith(prefix))) seen.push(String(args[0]).toLowerCase());
    });
    try {
      await sleep(50);
      const got = await t.receive({ channels: ["idle"], max: 10, leaseMs: 30_000, waitMs: 1500 });
      assert.deepEqual(got, []);
    } finally {
      feed.disconnect();
      monitor.disconnect();
    }
    const scripts = seen.filter((c) => c === "evalsha" || c === "eval").length;
    assert.ok(scripts >= 1 && scripts <= 3, `one receive script, maybe one more after the wait, got ${scripts}: ${seen.join(" ")}`);
    assert.ok(seen.filter((c) => c === "blpop").length <= 2, `it blocked in BLPOP: ${seen.join(" ")}`);
  });

  it("a receive waiting for a delayed message is woken at its due time by the transport (CLIENT UNBLOCK), not by Redis' timeout tick", async () => {
    const t = await transport(`${base}-due`);
    const admin = await adminClient();
    // MONITOR leaves out admin commands such as CLIENT, so count them in the server's statistics.
    const unblocks = async () => Number(/^cmdstat_client\|unblock:calls=(\d+)/m.exec(await admin.info("commandstats"))?.[1] ?? 0);
    const before = await unblocks();
    const m = msg("due", { runAt: Date.now() + 300 });
    await t.send([m]);
    const got = await t.receive({ channels: ["due"], max: 10, leaseMs: 30_000, waitMs: 5000 });
    assert.deepEqual(got.map((d) => d.message.id), [m.id]);
    assert.ok((await unblocks()) > before, "the wait was ended by CLIENT UNBLOCK from the command connection");
  });

  it("a receiver working through delayed messages due a millisecond apart sleeps locally between them, without CLIENT UNBLOCK", async () => {
    const t = await transport(`${base}-burst`);
    const admin = await adminClient();
    const unblocks = async () => Number(/^cmdstat_client\|unblock:calls=(\d+)/m.exec(await admin.info("commandstats"))?.[1] ?? 0);
    const start = Date.now() + 200;
    const sent = Array.from({ length: 40 }, (_, i) => msg("burst", { runAt: start + i }));
    await t.send(sent);
    const before = await unblocks();
    const loop = { channels: ["burst"], max: 10, leaseMs: 30_000, waitMs: 5000, signal: new AbortController().signal };
    const got: string[] = [];
    while (got.length < sent.length) {
      const batch = await t.receive(loop);
      const now = Date.now();
      for (const d of batch) assert.ok(d.message.runAt <= now, "never before its due time");
      got.push(...batch.map((d) => d.message.id));
    }
    assert.deepEqual(got, sent.map((m) => m.id));
    // The first wait (about 200 ms) blocks in Redis and is ended by one CLIENT UNBLOCK; the
    // gaps of a millisecond after it are slept here.
    assert.ok((await unblocks()) - before <= 1, `CLIENT UNBLOCK calls: ${(await unblocks()) - before}`);
  });

  it("a message sent without a delay is due on arrival, even when the server's clock is behind the sender's; a delayed one waits for the server's clock", async () => {
    // The server's "now" (the test clock) is 60 s behind the clock the messages were made with.
    const made = Date.now();
    const clock = new VirtualClock(made - 60_000);
    const t = await transport(`${base}-skew`, { clock });
    const undelayed = createEnvelope({ name: "redis.test", channel: "skew", payload: 1 }, made);
    const delayed = createEnvelope({ name: "redis.test", channel: "skew", payload: 2, runAt: made + 10 }, made);
    await t.send([undelayed, delayed]);
    const got = await t.receive({ channels: ["skew"], max: 10, leaseMs: 30_000, waitMs: 0 });
    assert.deepEqual(got.map((d) => d.message.id), [undelayed.id], "only the message sent without a delay");
    assert.deepEqual(await t.ack(got.map((d) => ({ id: d.message.id, token: d.token }))), [true]);
    await clock.advance(60_011);
    const later = await t.receive({ channels: ["skew"], max: 10, leaseMs: 30_000, waitMs: 0 });
    assert.deepEqual(later.map((d) => d.message.id), [delayed.id], "the delayed one once the server's clock passes its runAt");
  });

  it("priority wins across channels and over older messages; a due delayed message takes its place", async () => {
    const t = await transport(`${base}-order`);
    const now = Date.now();
    const old = msg("o1", { runAt: now - 10_000 });
    const high = msg("o2", { priority: 5 });
    const soonHigh = msg("o1", { priority: 9, runAt: now + 300 });
    await t.send([old, high, soonHigh]);
    const first = await t.receive({ channels: ["o1", "o2"], max: 1, leaseMs: 30_000, waitMs: 0 });
    assert.deepEqual(first.map((d) => d.message.id), [high.id], "higher priority first, from either channel");
    await sleep(350);
    const rest = await t.receive({ channels: ["o1", "o2"], max: 5, leaseMs: 30_000, waitMs: 0 });
    assert.deepEqual(rest.map((d) => d.message.id), [soonHigh.id, old.id], "the delayed high-priority message, once due, goes before the old one");
    assert.equal(rest[0]!.message.runAt, soonHigh.runAt);
  });

  it("a channel named twice in one receive is read once; unencodable payloads are refused", async () => {
    const t = await transport(`${base}-twice`);
    const sent = [msg("d"), msg("d"), msg("d"), msg("d")];
    await t.send(sent);
    const got = await t.receive({ channels: ["d", "d"], max: 3, leaseMs: 30_000, waitMs: 0 });
    assert.equal(new Set(got.map((d) => d.message.id)).size, 3);
    const rest = await t.receive({ channels: ["d"], max: 10, leaseMs: 30_000, waitMs: 0 });
    assert.equal(rest.length, 1, "nothing was dropped from the ready set");
    const bad = createEnvelope({ name: "redis.test", channel: "d", payload: { n: 1n } });
    await assert.rejects(t.send([bad]), (err: unknown) => isFerryError(err, "INVALID_MESSAGE"));
  });

  it("a send larger than sendChunk runs one script call per chunk and keeps receipts in order", async () => {
    const t = await transport(`${base}-chunks`, { sendChunk: 100 });
    const sent = Array.from({ length: 350 }, () => msg("chunks"));
    const again = sent[10]!;
    const receipts = await t.send([...sent, again]);
    assert.equal(receipts.length, 351);
    assert.deepEqual(receipts.slice(0, 350), sent.map((m) => ({ id: m.id, deduplicated: false })));
    assert.deepEqual(receipts[350], { id: again.id, deduplicated: true }, "the same id in a later chunk is stored once");
    assert.equal((await t.counts()).find((c) => c.channel === "chunks")?.waiting, 350);
  });

  it("a send of several chunks checks every key first, and reports what it stored when a later chunk cannot be encoded", async () => {
    const t = await transport(`${base}-chunkfail`, { sendChunk: 100 });
    const waiting = async () => (await t.counts()).find((c) => c.channel === "chunkfail")?.waiting ?? 0;
    const badKey = Array.from({ length: 250 }, () => msg("chunkfail"));
    badKey[220] = { ...badKey[220]!, priority: 5000 };
    await assert.rejects(t.send(badKey), (err: unknown) => isFerryError(err, "INVALID_MESSAGE"));
    assert.equal(await waiting(), 0, "a bad key stores nothing");
    const sent = Array.from({ length: 250 }, () => msg("chunkfail"));
    sent[220] = { ...sent[220]!, payload: { n: 1n } };
    await assert.rejects(t.send(sent), (err: unknown) => isFerryError(err, "INVALID_MESSAGE") && (err.details as { stored?: number }).stored === 200);
    assert.equal(await waiting(), 200, "the two chunks before the bad one were stored");
    const again = await t.send(sent.filter((_, i) => i !== 220));
    assert.equal(again.filter((r) => r.deduplicated).length, 200, "re-sending stores only the rest");
    assert.equal(await waiting(), 249);
  });

  it("opens from a URL with ?prefix and refuses unknown options", async () => {
    const url = new URL(SERVERS.redis);
    url.searchParams.set("prefix", `${base}-url`);
    const t = (await createTransport(url.toString())) as RedisTransport;
    open.push(t);
    assert.equal(t.kind, "redis");
    assert.equal(t.prefix, `${base}-url`);
    assert.throws(() => optionsFromUrl(new URL("redis://127.0.0.1:6379/0?prefx=x")), (err: unknown) => isFerryError(err, "INVALID_URL"));
    assert.deepEqual(optionsFromUrl(new URL("redis://127.0.0.1:6379/0?completedCount=0&deadAge=7d&deadCount=none")).retention, {
      completed: { count: 0 },
      dead: { age: "7d", count: Infinity },
    });
    for (const bad of ["completedCount=-1", "completedCount=1.5", "completedCount=", "deadAge=soon", "completedAge=-5"]) {
      assert.throws(() => optionsFromUrl(new URL(`redis://127.0.0.1:6379/0?${bad}`)), (err: unknown) => isFerryError(err, "INVALID_URL"), bad);
    }
    assert.throws(() => optionsFromUrl(new URL("redis://127.0.0.1:6379/0?prefix=a*b")), (err: unknown) => isFerryError(err, "INVALID_OPTION"));
    await assert.rejects(RedisTransport.open({ url: "redis://127.0.0.1:1/0", redis: { retryStrategy: () => null }, onWarning: () => {} }), (err: unknown) => isFerryError(err, "TRANSPORT_UNAVAILABLE"));
  });
});
