/**
 * The shop's own data (users, orders, audit log) in its own SQLite file, apart
 * from Ferry's queue file. Opened on first use.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

/** A user row. */
export interface User {
  id: string;
  email: string;
  name: string;
}

/** An order row. */
export interface Order {
  id: string;
  user_id: string;
  total: number;
  status: "created" | "paid" | "closed" | "shipped";
}

/** The shop's tables, on one better-sqlite3 connection. */
export class ShopStore {
  readonly db: Database.Database;

  /** @param path the SQLite file (its folder is created) */
  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, crm_id TEXT);
      CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, total INTEGER NOT NULL, status TEXT NOT NULL, tracking TEXT);
      CREATE TABLE IF NOT EXISTS audit_log (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL);
    `);
  }

  /** Save a user; an e-mail already registered keeps its first row. Returns the stored user. */
  saveUser(user: User): User {
    this.db.prepare(`INSERT INTO users (id, email, name) VALUES (?, ?, ?) ON CONFLICT (email) DO NOTHING`).run(user.id, user.email, user.name);
    return this.db.prepare(`SELECT id, email, name FROM users WHERE email = ?`).get(user.email) as User;
  }

  /** Remember the CRM's id for a user. */
  setCrmId(userId: string, crmId: string): void {
    this.db.prepare(`UPDATE users SET crm_id = ? WHERE id = ?`).run(crmId, userId);
  }

  /** Save a new order. */
  saveOrder(order: Order): void {
    this.db.prepare(`INSERT INTO orders (id, user_id, total, status) VALUES (?, ?, ?, ?)`).run(order.id, order.user_id, order.total, order.status);
  }

  /** An order by id. */
  order(id: string): Order | undefined {
    return this.db.prepare(`SELECT id, user_id, total, status FROM orders WHERE id = ?`).get(id) as Order | undefined;
  }

  /** Move an order from one status to another; false when it was not in `from`. */
  moveOrder(id: string, from: Order["status"], to: Order["status"], tracking?: string): boolean {
    return this.db.prepare(`UPDATE orders SET status = ?, tracking = coalesce(?, tracking) WHERE id = ? AND status = ?`).run(to, tracking ?? null, id, from).changes === 1;
  }

  /** Append to the audit log. */
  audit(event: string, detail: unknown): void {
    this.db.prepare(`INSERT INTO audit_log (at, event, detail) VALUES (?, ?, ?)`).run(Date.now(), event, JSON.stringify(detail));
  }

  /** How many audit entries there are. */
  auditCount(): number {
    return this.db.prepare(`SELECT count(*) FROM audit_log`).pluck().get() as number;
  }

  close(): void {
    this.db.close();
  }
}
