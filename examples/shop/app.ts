/**
 * The shop's Ferry: events, tasks and who listens to what (seeds 000, 002, 003).
 *
 * - `user.registered` fans out to a welcome e-mail (channel `emails`), an audit
 *   entry (sync: in the publisher's process, before publish returns) and a CRM
 *   sync (channel `integrations`, retried while the CRM fails).
 * - `order.created` schedules `order.close-unpaid` after SHOP_CLOSE_DELAY
 *   (default 10 s); it cancels itself when the order was paid meanwhile.
 * - `order.paid` triggers virtual shipping.
 *
 * Run its worker alone with `ferry worker --app examples/shop/app.ts` (set
 * SHOP_SMTP_PORT and SHOP_CRM_URL to reach the mail server and the CRM).
 *
 * Settings, read from the environment:
 * - SHOP_DATA_DIR: where the queue (`shop.db`) and the shop's data (`shop-app.db`) live. Default `./data`.
 * - SHOP_CLOSE_DELAY: how long an unpaid order stays open. Default `"10s"`.
 * - SHOP_SMTP_PORT: the SMTP server on 127.0.0.1 (no default: main.ts starts one).
 * - SHOP_CRM_URL: the CRM endpoint (no default: main.ts starts one).
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import nodemailer from "nodemailer";
import { z } from "zod";
import { Cancel, createFerry, defineEvent, defineTask, FerryError, RetryLater, Unrecoverable } from "../../src/index.ts";
import { ShopStore } from "./store.ts";

const dataDir = process.env.SHOP_DATA_DIR ?? "./data";
let store: ShopStore | undefined;
/** The shop's own database (opened on first use). */
export function shopStore(): ShopStore {
  return (store ??= new ShopStore(join(dataDir, "shop-app.db")));
}

// Events: named facts with schemas.
export const userRegistered = defineEvent("user.registered", z.object({ id: z.string(), email: z.string().email(), name: z.string() }));
export const orderCreated = defineEvent("order.created", z.object({ orderId: z.string(), userId: z.string(), total: z.number().int().positive() }));
export const orderPaid = defineEvent("order.paid", z.object({ orderId: z.string() }));

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Unrecoverable(`${name} is not set; start the shop with main.ts, or set it to reach the service`);
  return value;
}

/** Seed 003's mail: sent through a real SMTP server with nodemailer. */
export const sendWelcome = defineTask("email.welcome", {
  schema: z.object({ email: z.string().email(), name: z.string() }),
  retry: { attempts: 5, delay: "1s" },
  timeout: "30s",
  async run({ email, name }) {
    const mailer = nodemailer.createTransport({ host: "127.0.0.1", port: Number(setting("SHOP_SMTP_PORT")), secure: false, ignoreTLS: true });
    try {
      const info = await mailer.sendMail({ from: "shop@example.com", to: email, subject: `Welcome, ${name}!`, text: `Hello ${name}, thanks for registering.` });
      return { delivered: info.accepted.length, response: info.response };
    } finally {
      mailer.close();
    }
  },
});

/** Seed 000's side effect that must not fail the registration: an audit entry, written in the publisher's process. */
export const auditLog = defineTask("audit.log", {
  run(payload, ctx) {
    shopStore().audit(ctx.headers.event ?? ctx.task, payload);
    return "logged";
  },
});

/** Seed 003's CRM push: a flaky third party, retried with a short fixed backoff. */
export const syncCrm = defineTask("crm.sync", {
  schema: z.object({ id: z.string(), email: z.string(), name: z.string() }),
  retry: { attempts: 6, backoff: "fixed", delay: "300ms", jitter: 0 },
  timeout: "10s",
  async run({ id, email, name }, ctx) {
    const res = await fetch(setting("SHOP_CRM_URL"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, name }), signal: ctx.signal });
    if (res.status === 503) throw new RetryLater(300, `CRM answered 503 (${((await res.json()) as { error: string }).error})`);
    if (!res.ok) throw new Unrecoverable(`CRM refused the contact with ${res.status}`);
    const { crmId } = (await res.json()) as { crmId: string };
    shopStore().setCrmId(id, crmId);
    return { crmId };
  },
});

/** Seed 002's delayed task: close an order nobody paid for. */
export const closeUnpaid = defineTask("order.close-unpaid", {
  schema: z.object({ orderId: z.string() }),
  run({ orderId }) {
    const order = shopStore().order(orderId);
    if (!order) throw new Unrecoverable(`order ${orderId} does not exist`);
    if (order.status !== "created") throw new Cancel(`order ${orderId} is ${order.status}; nothing to close`);
    shopStore().moveOrder(orderId, "created", "closed");
    return { closed: orderId };
  },
});

/** Seed 002's `virtualShipping`: deliver a paid virtual good. */
export const shipVirtual = defineTask("order.ship-virtual", {
  schema: z.object({ orderId: z.string() }),
  run({ orderId }) {
    const tracking = `VS-${orderId}`;
    if (!shopStore().moveOrder(orderId, "paid", "shipped", tracking)) throw new Cancel(`order ${orderId} is not paid; not shipping`);
    return { tracking };
  },
});

/** The Ferry. Channels are bound by configuration only: move `emails` to Redis by adding `channels: { emails: "redis://..." }`. */
export const ferry = createFerry({ transport: `sqlite://${join(dataDir, "shop.db")}` });

ferry.on(userRegistered, sendWelcome, { channel: "emails", map: (u: { email: string; name: string }) => ({ email: u.email, name: u.name }) });
ferry.on(userRegistered, auditLog);
ferry.on("order.*", auditLog);
ferry.on(userRegistered, syncCrm, { channel: "integrations" });
ferry.on(orderCreated, closeUnpaid, { channel: "orders", delay: process.env.SHOP_CLOSE_DELAY ?? "10s", map: (o: { orderId: string }) => ({ orderId: o.orderId }) });
ferry.on(orderPaid, shipVirtual, { channel: "orders" });

/** Register a user: saved in the shop's database, then the event fans out. */
export async function registerUser(email: string, name: string): Promise<string> {
  const user = shopStore().saveUser({ id: randomUUID(), email, name });
  await ferry.publish(userRegistered, user);
  return user.id;
}

/**
 * Sign-up over HTTP (seed 001): `POST /v1/tasks/user.register` answers 202 at once;
 * this task saves the user and publishes `user.registered`; its result (the new
 * user's id) comes back by poll or server-sent events.
 */
export const registerTask = defineTask("user.register", {
  channel: "signups",
  schema: z.object({ email: z.string().email(), name: z.string().min(1).max(100) }),
  run: async ({ email, name }) => ({ userId: await registerUser(email, name) }),
});
ferry.register(registerTask);

/** Create an order and announce it (which schedules its close-unpaid check). */
export async function createOrder(userId: string, total: number): Promise<string> {
  const orderId = `o-${randomUUID().slice(0, 8)}`;
  shopStore().saveOrder({ id: orderId, user_id: userId, total, status: "created" });
  await ferry.publish(orderCreated, { orderId, userId, total });
  return orderId;
}

/** Pay an order and announce it (which ships it). */
export async function payOrder(orderId: string): Promise<void> {
  if (!shopStore().moveOrder(orderId, "created", "paid")) throw new FerryError("INVALID_OPTION", `order ${orderId} cannot be paid: it is ${shopStore().order(orderId)?.status ?? "missing"}`);
  await ferry.publish(orderPaid, { orderId });
}

/** Close the shop's database (the Ferry is closed by its owner). */
export function closeShop(): void {
  store?.close();
  store = undefined;
}

export default ferry;
