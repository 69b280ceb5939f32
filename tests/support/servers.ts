/**
 * Real servers for transport tests. Locally a server that is not running skips
 * its tests with a clear message; in CI (`CI=true`) it fails them.
 */
import { connect } from "node:net";

/** Loopback addresses of the project's test servers (overridable by environment). */
export const SERVERS = {
  redis: process.env.FERRY_TEST_REDIS ?? "redis://127.0.0.1:6379/0",
  postgres: process.env.FERRY_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test",
  amqp: process.env.FERRY_TEST_AMQP ?? "amqp://guest:guest@127.0.0.1:5672/%2F",
} as const;

/** True when something accepts TCP connections at host:port within `ms`. */
export function portOpen(host: string, port: number, ms = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(ms, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Check that a server is up. Returns `undefined` when it is; otherwise a skip
 * reason locally, or throws under CI.
 */
export async function serverSkipReason(name: keyof typeof SERVERS): Promise<string | undefined> {
  const url = new URL(SERVERS[name]);
  const defaults = { redis: 6379, postgres: 5432, amqp: 5672 } as const;
  const port = Number(url.port || defaults[name]);
  if (await portOpen(url.hostname, port)) return undefined;
  const message = `${name} is not reachable at ${url.hostname}:${port}; start it (see .ci/run) to run these tests`;
  if (process.env.CI === "true") throw new Error(`CI: ${message}`);
  return message;
}
