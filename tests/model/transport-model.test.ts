/**
 * R3: model-based property test of the transport contract. fast-check drives
 * enqueue, receive, heartbeat (extend), complete (ack), cancel, fail (retry),
 * snooze, dead-letter, lease expiry (by advancing a VirtualClock), stale and
 * forged tokens, and restarts (close and reopen the store) against a tiny model, and after every step compares each
 * message's stored state and attempt with the model.
 *
 * Invariants checked:
 * - one state per message, equal to the model's;
 * - terminal states (completed, cancelled, dead) never revert;
 * - attempts only rise, except a snooze, which gives its attempt back;
 * - at most one live lease per message: only the newest token is honoured,
 *   every earlier or forged token is refused by ack, retry, dead-letter and extend;
 * - receive hands out exactly the due messages (and expired leases) in order:
 *   priority desc, then runAt, then insertion.
 *
 * Runs against MemoryTransport and SqliteTransport with the same commands.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { VirtualClock } from "../../src/core/clock.ts";
import { createEnvelope } from "../../src/core/envelope.ts";
import { MemoryTransport } from "../../src/transport/memory/memory-transport.ts";
import { SqliteTransport } from "../../src/transport/sqlite/sqlite-transport.ts";
import { RedisTransport } from "../../src/transport/redis/redis-transport.ts";
import { deleteKeys } from "../../src/transport/redis/redis-test-support.ts";
import { serverSkipReason, SERVERS } from "../support/servers.ts";
import type { Inspectable, MessageState, Transport } from "../../src/transport/types.ts";

const CHANNEL = "model";
const TERMINAL: ReadonlySet<MessageState> = new Set(["completed", "cancelled", "dead"]);

interface ModelMessage {
  id: string;
  state: MessageState;
  attempt: number;
  runAt: number;
  priority: number;
  seq: number;
  /** The token of the current lease ("" when none). */
  token: string;
  leaseExpiresAt: number;
}

interface Model {
  messages: Map<string, ModelMessage>;
  /** Every lease ever issued, current and stale, in order. */
  issued: { id: string; token: string }[];
  seq: number;
}

interface Real {
  transport: Transport & Inspectable;
  clock: VirtualClock;
  /** Close the store and open it again (a process restart), where the store outlives its handle. */
  reopen?: (old: Transport & Inspectable) => Promise<Transport & Inspectable>;
}

type Cmd = fc.AsyncCommand<Model, Real>;

/** Is this lease the message's current one (the only one the store may honour)? */
function holds(m: Model, lease: { id: string; token: string }): ModelMessage | undefined {
  const s = m.messages.get(lease.id);
  return s && s.state === "active" && s.token === lease.token ? s : undefined;
}

/** Compare every message's stored state and attempt with the model. */
async function compare(m: Model, r: Real): Promise<void> {
  for (const s of m.messages.values()) {
    const rec = await r.transport.get(s.id);
    assert.ok(rec, `message ${s.id} is stored`);
    assert.equal(rec.state, s.state, `state of ${s.id}`);
    assert.equal(rec.message.attempt, s.attempt, `attempt of ${s.id}`);
    assert.equal(rec.message.runAt, s.runAt, `runAt of ${s.id}`);
  }
}

/** How often each outcome happened across all runs, to check the runs explored both sides. */
const seen = { honoured: 0, refused: 0, recovered: 0, delivered: 0 };

function outcome(s: ModelMessage | undefined): boolean {
  if (s) seen.honoured++;
  else seen.refused++;
  return s !== undefined;
}

function lease(m: Model, pick: number): { id: string; token: string } {
  return m.issued[pick % m.issued.length]!;
}

class Enqueue implements Cmd {
  constructor(readonly delay: number, readonly priority: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const now = r.clock.now();
    const e = createEnvelope({ name: "model.task", channel: CHANNEL, payload: { seq: m.seq }, runAt: now + this.delay, priority: this.priority }, now);
    const [receipt] = await r.transport.send([e]);
    assert.deepEqual(receipt, { id: e.id, deduplicated: false });
    m.messages.set(e.id, { id: e.id, state: "waiting", attempt: 0, runAt: e.runAt, priority: e.priority, seq: m.seq++, token: "", leaseExpiresAt: 0 });
    await compare(m, r);
  }
  toString = () => `enqueue(delay=${this.delay}, priority=${this.priority})`;
}

class Receive implements Cmd {
  constructor(readonly max: number, readonly leaseMs: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const now = r.clock.now();
    const due = [...m.messages.values()]
      .filter((s) => (s.state === "waiting" && s.runAt <= now) || (s.state === "active" && s.leaseExpiresAt <= now))
      .sort((a, b) => b.priority - a.priority || a.runAt - b.runAt || a.seq - b.seq)
      .slice(0, this.max);
    const got = await r.transport.receive({ channels: [CHANNEL], max: this.max, leaseMs: this.leaseMs, waitMs: 0 });
    assert.deepEqual(got.map((d) => d.message.id), due.map((s) => s.id), "receive hands out the due messages in order");
    for (const d of got) {
      const s = m.messages.get(d.message.id)!;
      assert.ok(!TERMINAL.has(s.state), "a terminal message is never delivered");
      seen.delivered++;
      if (s.state === "active") seen.recovered++;
      assert.equal(d.message.attempt, s.attempt + 1, "each delivery counts one attempt");
      assert.equal(d.leaseExpiresAt, now + this.leaseMs);
      assert.ok(!m.issued.some((l) => l.id === s.id && l.token === d.token), "every lease gets a new token");
      s.state = "active";
      s.attempt++;
      s.token = d.token;
      s.leaseExpiresAt = now + this.leaseMs;
      m.issued.push({ id: s.id, token: d.token });
    }
    await compare(m, r);
  }
  toString = () => `receive(max=${this.max}, lease=${this.leaseMs})`;
}

class Ack implements Cmd {
  constructor(readonly pick: number, readonly status: "completed" | "cancelled") {}
  check = (m: Readonly<Model>) => m.issued.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const l = lease(m, this.pick);
    const s = holds(m, l);
    assert.deepEqual(await r.transport.ack([{ ...l, status: this.status, result: { ok: true } }]), [outcome(s)], s ? "the current lease completes" : "a stale lease is refused");
    if (s) {
      s.state = this.status;
      s.token = "";
    }
    await compare(m, r);
  }
  toString = () => `ack(#${this.pick}, ${this.status})`;
}

class Retry implements Cmd {
  constructor(readonly pick: number, readonly delay: number, readonly attemptUsed: boolean) {}
  check = (m: Readonly<Model>) => m.issued.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const l = lease(m, this.pick);
    const s = holds(m, l);
    const now = r.clock.now();
    const error = this.attemptUsed ? { at: now, attempt: s?.attempt ?? 0, code: "HANDLER_FAILED", message: "boom" } : undefined;
    const ok = await r.transport.retry([{ ...l, runAt: now + this.delay, attemptUsed: this.attemptUsed, ...(error ? { error } : {}) }]);
    assert.deepEqual(ok, [outcome(s)]);
    if (s) {
      s.state = "waiting";
      s.token = "";
      s.runAt = now + this.delay;
      if (!this.attemptUsed) s.attempt = Math.max(0, s.attempt - 1);
    }
    await compare(m, r);
  }
  toString = () => `${this.attemptUsed ? "retry" : "snooze"}(#${this.pick}, delay=${this.delay})`;
}

class DeadLetter implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.issued.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const l = lease(m, this.pick);
    const s = holds(m, l);
    const ok = await r.transport.deadLetter([{ ...l, error: { at: r.clock.now(), attempt: 1, code: "UNRECOVERABLE", message: "bad" } }]);
    assert.deepEqual(ok, [outcome(s)]);
    if (s) {
      s.state = "dead";
      s.token = "";
    }
    await compare(m, r);
  }
  toString = () => `deadLetter(#${this.pick})`;
}

class Extend implements Cmd {
  constructor(readonly pick: number, readonly leaseMs: number) {}
  check = (m: Readonly<Model>) => m.issued.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const l = lease(m, this.pick);
    const s = holds(m, l);
    assert.deepEqual(await r.transport.extend([l], this.leaseMs), [outcome(s)], s ? "the current lease extends" : "a stale lease cannot be extended");
    if (s) s.leaseExpiresAt = r.clock.now() + this.leaseMs;
    await compare(m, r);
  }
  toString = () => `extend(#${this.pick}, ${this.leaseMs})`;
}

class Forged implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.messages.size > 0;
  async run(m: Model, r: Real): Promise<void> {
    const ids = [...m.messages.keys()];
    const ref = { id: ids[this.pick % ids.length]!, token: `forged-${this.pick}` };
    assert.deepEqual(await r.transport.ack([ref]), [false]);
    assert.deepEqual(await r.transport.extend([ref], 1000), [false]);
    assert.deepEqual(await r.transport.retry([{ ...ref, runAt: r.clock.now(), attemptUsed: true }]), [false]);
    await compare(m, r);
  }
  toString = () => `forged(#${this.pick})`;
}

class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.clock.advance(this.ms);
    await compare(m, r);
  }
  toString = () => `advance(${this.ms})`;
}

const enqueue = fc.tuple(fc.constantFrom(0, 0, 0, 50, 500), fc.integer({ min: -2, max: 2 })).map(([d, p]) => new Enqueue(d, p));
const receive = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.constantFrom(100, 1000)).map(([n, l]) => new Receive(n, l));
// Enqueue and receive are listed twice: they feed every other command.
/** A restart: leases, due times and attempts all survive it (a no-op for the in-memory store). */
class Restart implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    if (r.reopen) r.transport = await r.reopen(r.transport);
    await compare(m, r);
  }
  toString = () => "restart";
}

const commands = [
  enqueue,
  enqueue,
  receive,
  receive,
  fc.tuple(fc.nat(), fc.constantFrom("completed" as const, "cancelled" as const)).map(([p, s]) => new Ack(p, s)),
  fc.tuple(fc.nat(), fc.constantFrom(0, 100, 700), fc.boolean()).map(([p, d, u]) => new Retry(p, d, u)),
  fc.nat().map((p) => new DeadLetter(p)),
  fc.tuple(fc.nat(), fc.constantFrom(100, 2000)).map(([p, l]) => new Extend(p, l)),
  fc.nat().map((p) => new Forged(p)),
  fc.constantFrom(1, 60, 150, 600, 1200).map((ms) => new Advance(ms)),
  fc.constant(null).map(() => new Restart()),
];

const dir = mkdtempSync(join(tmpdir(), "ferry-model-"));
let files = 0;

interface Subject {
  name: string;
  open: (clock: VirtualClock) => Real | Promise<Real>;
  /** Why it cannot run here, or undefined. */
  skip?: () => Promise<string | undefined>;
}

const redisBase = `ferry-test-${process.pid}-model`;
let redisStores = 0;

const subjects: Subject[] = [
  { name: "memory", open: (clock) => ({ transport: new MemoryTransport({ clock }), clock }) },
  {
    name: "sqlite",
    open: (clock) => {
      const path = join(dir, `model-${files++}.db`);
      return {
        transport: new SqliteTransport({ path, clock, watch: false }),
        clock,
        reopen: async (old) => {
          await old.close();
          return new SqliteTransport({ path, clock, watch: false });
        },
      };
    },
  },
  {
    // The Redis store keeps due times and leases by a clock given for tests (its server clock otherwise).
    name: "redis",
    skip: () => serverSkipReason("redis"),
    open: async (clock) => {
      const prefix = `${redisBase}-${redisStores++}`;
      const open = () => RedisTransport.open({ url: SERVERS.redis, prefix, clock, checkServer: false });
      return {
        transport: await open(),
        clock,
        reopen: async (old) => {
          await old.close();
          return open();
        },
      };
    },
  },
];

describe("R3 transport model", () => {
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    if (redisStores > 0) await deleteKeys(SERVERS.redis, redisBase);
  });

  for (const subject of subjects) {
    it(`${subject.name}: every command sequence keeps the model's invariants`, async (t) => {
      const skip = await subject.skip?.();
      if (skip) return t.skip(skip);
      await fc.assert(
        fc.asyncProperty(fc.commands(commands, { maxCommands: 60, size: "max" }), async (cmds) => {
          const clock = new VirtualClock(1_700_000_000_000);
          const real = await subject.open(clock);
          try {
            await fc.asyncModelRun(async () => ({ model: { messages: new Map(), issued: [], seq: 0 }, real }), cmds);
            assert.equal(clock.pendingSleepers, 0, "no receive is left waiting");
          } finally {
            await real.transport.close();
          }
        }),
        { numRuns: 60 },
      );
      for (const [k, n] of Object.entries(seen)) assert.ok(n > 0, `the runs exercised "${k}" (${JSON.stringify(seen)})`);
      if (process.env.FERRY_MODEL_STATS) console.log(subject.name, JSON.stringify(seen));
      for (const k of Object.keys(seen) as (keyof typeof seen)[]) seen[k] = 0;
    });
  }

  it("the model notices a broken transport (fencing off)", async () => {
    // A transport that honours any token must fail the property: proof the test can fail.
    const clock = new VirtualClock(1_700_000_000_000);
    const inner = new MemoryTransport({ clock });
    const broken: Transport & Inspectable = {
      kind: "broken",
      send: (m) => inner.send(m),
      receive: (r) => inner.receive(r),
      ack: async (items) => items.map(() => true),
      retry: (i) => inner.retry(i),
      deadLetter: (i) => inner.deadLetter(i),
      extend: (i, ms) => inner.extend(i, ms),
      close: () => inner.close(),
      counts: () => inner.counts(),
      list: (q) => inner.list(q),
      get: (id) => inner.get(id),
    };
    // The first lease expires and the message is leased again; acking with the first (stale) token must be refused.
    const cmds = [new Enqueue(0, 0), new Receive(1, 100), new Advance(150), new Receive(1, 100), new Ack(0, "completed")];
    await assert.rejects(
      fc.asyncModelRun(async () => ({ model: { messages: new Map(), issued: [], seq: 0 }, real: { transport: broken, clock } }), cmds),
      (err: unknown) => err instanceof assert.AssertionError && /stale lease is refused/.test(err.message),
    );
    await inner.close();
  });
});
