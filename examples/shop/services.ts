/**
 * The shop's neighbours, started by the example itself on 127.0.0.1 with random
 * ports: an SMTP server that receives the welcome e-mails, and a CRM endpoint
 * that fails half the time (every contact's first call answers 503, the next
 * one 200), so the CRM sync shows retries.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

/** A mail the SMTP server accepted. */
export interface ReceivedMail {
  from: string;
  to: string[];
  /** The raw message (headers and body). */
  raw: string;
}

/** A running SMTP server. */
export interface SmtpService {
  port: number;
  mails: ReceivedMail[];
  close(): Promise<void>;
}

/**
 * Start an SMTP server on 127.0.0.1 (a random port), without TLS or auth: a stand-in for
 * the real mail relay. `onMail` is called for each accepted mail.
 */
export async function startSmtp(onMail: (mail: ReceivedMail) => void = () => undefined): Promise<SmtpService> {
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const mail: ReceivedMail = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString("utf8"),
        };
        mails.push(mail);
        onMail(mail);
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** One call the CRM received. */
export interface CrmCall {
  email: string;
  status: number;
}

/** A running CRM endpoint. */
export interface CrmService {
  /** POST contacts here: `{ "email": "...", "name": "..." }`. */
  url: string;
  calls: CrmCall[];
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw new Error("body too large");
  }
  return body;
}

/**
 * Start a CRM endpoint on 127.0.0.1 (a random port). It fails half the time: the
 * first call for a contact answers 503, the second 200, and so on alternately.
 */
export async function startCrm(onCall: (call: CrmCall) => void = () => undefined): Promise<CrmService> {
  const calls: CrmCall[] = [];
  const seen = new Map<string, number>();
  const server = createServer((req, res) => {
    if (req.method !== "POST" || req.url !== "/contacts") {
      res.writeHead(404).end();
      return;
    }
    readBody(req)
      .then((text) => {
        const { email } = JSON.parse(text) as { email?: unknown };
        if (typeof email !== "string") {
          res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: "email is required" }));
          return;
        }
        const n = (seen.get(email) ?? 0) + 1;
        seen.set(email, n);
        const status = n % 2 === 1 ? 503 : 200;
        const call = { email, status };
        calls.push(call);
        onCall(call);
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(status === 200 ? { crmId: `crm-${email.split("@")[0]}` } : { error: "CRM is overloaded, try again" }));
      })
      .catch(() => res.writeHead(400).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/contacts`,
    calls,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
