/**
 * The shop example, started by `npm start`: starts a local SMTP server and a
 * flaky CRM, runs a worker, registers a few users and places orders, and
 * prints one line per run (seed 002's callback fields: channel, task, id,
 * params, duration, message). Runs until Ctrl-C; with `--once` it exits when
 * all the work it caused is done.
 */
import { randomBytes } from "node:crypto";
import { isInspectable } from "../../src/index.ts";
import { serve } from "../../src/http/server.ts";
import type { RunReport } from "../../src/index.ts";
import { startCrm, startSmtp } from "./services.ts";

const once = process.argv.includes("--once");
const say = (line: string) => process.stdout.write(`${line}\n`);

const subject = (raw: string) => /^Subject: (.*)$/m.exec(raw)?.[1] ?? "(no subject)";
const smtp = await startSmtp((mail) => say(`smtp   delivered "${subject(mail.raw)}" to ${mail.to.join(", ")}`));
const crm = await startCrm((call) => say(`crm    ${call.status} for ${call.email}${call.status === 503 ? " (the CRM fails half the time)" : ""}`));
process.env.SHOP_SMTP_PORT = String(smtp.port);
process.env.SHOP_CRM_URL = crm.url;

// Imported after the services are up, so the app reads their addresses.
const shop = await import("./app.ts");
const { ferry } = shop;

function formatRun(r: RunReport): string {
  const params = JSON.stringify(r.params);
  return [
    "run   ",
    `[${r.channel}]`.padEnd(15),
    r.task.padEnd(19),
    `#${r.id.slice(-6)}`,
    (params.length > 50 ? `${params.slice(0, 47)}...` : params).padEnd(50),
    `${r.durationMs}ms`.padStart(6),
    ` ${r.status}: ${r.message}`,
  ].join(" ");
}
ferry.events.on("run", (r) => say(formatRun(r)));
ferry.events.on("warning", (w) => say(`warn   ${w.code}: ${w.message}`));

const worker = ferry.worker({ concurrency: 8, handleSignals: !once });
await worker.start();
say(`shop   worker running on ${ferry.channels().join(", ")}; SMTP on 127.0.0.1:${smtp.port}, CRM at ${crm.url}`);

// Seed 001: the HTTP API (202 + status URL + SSE) and the dashboard's data, token-protected.
const token = process.env.FERRY_TOKEN ?? randomBytes(18).toString("base64url");
const http = await serve(ferry, { port: once ? 0 : Number(process.env.PORT ?? 8080), host: "127.0.0.1", tokens: { read: [token], admin: [token] } });
say(`shop   HTTP API on ${http.url}${process.env.FERRY_TOKEN ? " (token from FERRY_TOKEN)" : `, token ${token}`}`);
say(`shop   try: curl -s -X POST ${http.url}/v1/tasks/user.register -H "Authorization: Bearer ${process.env.FERRY_TOKEN ? "$FERRY_TOKEN" : token}" -H "Content-Type: application/json" -d '{"payload":{"email":"dee@example.com","name":"Dee"}}'`);

// Seeds 000 and 003: registrations; each fans out to mail, audit and CRM.
const users: Record<string, string> = {};
for (const [email, name] of [["ada@example.com", "Ada"], ["bob@example.com", "Bob"], ["chen@example.com", "Chen"]] as const) {
  users[name] = await shop.registerUser(email, name);
  say(`shop   registered ${name} <${email}>`);
}
// Seed 002: orders; an unpaid one is closed after the delay, a paid one ships.
const unpaid = await shop.createOrder(users.Ada!, 1999);
say(`shop   order ${unpaid} created for Ada (left unpaid: closes after ${process.env.SHOP_CLOSE_DELAY ?? "10s"})`);
const paid = await shop.createOrder(users.Bob!, 4999);
say(`shop   order ${paid} created for Bob`);
await shop.payOrder(paid);
say(`shop   order ${paid} paid by Bob`);

async function idle(): Promise<boolean> {
  for (const channel of ferry.channels()) {
    const t = await ferry.transport(channel);
    if (!isInspectable(t)) continue;
    const c = (await t.counts()).find((x) => x.channel === channel);
    if (c && c.waiting + c.active > 0) return false;
  }
  return true;
}

const stopped = new Promise<void>((resolve) => ferry.events.on("worker:state", (s) => s.state === "stopped" && resolve()));
if (once) {
  while (!(await idle())) await new Promise((r) => setTimeout(r, 100));
  await worker.stop();
} else {
  say("shop   running; Ctrl-C to stop");
}
await stopped;
await http.close();
await ferry.close();
const store = shop.shopStore();
say(`shop   done: ${smtp.mails.length} mails delivered, ${crm.calls.length} CRM calls (${crm.calls.filter((c) => c.status !== 200).length} failed), order ${unpaid} ${store.order(unpaid)?.status}, order ${paid} ${store.order(paid)?.status}, ${store.auditCount()} audit entries`);
shop.closeShop();
await Promise.all([smtp.close(), crm.close()]);
