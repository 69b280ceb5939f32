/**
 * The run ledger: a separate SQLite file, `synchronous=FULL`, where every
 * chaos handler appends `(messageId, attempt, pid)` before it returns. It is
 * the ground truth the checker compares with the client-side enqueue history.
 *
 * Handlers of one process share one connection; their appends are gathered for
 * one turn of the event loop and committed in one transaction (a group commit),
 * and each handler's promise resolves only after that commit is on disk, so the
 * "appended before it returns" promise holds while fsyncs stay few.
 */
import Database from "better-sqlite3";

/** What a ledger row records: a handler that started, or one that finished its work. */
export type LedgerKind = "start" | "done";

/** One ledger row. */
export interface LedgerRow {
  messageId: string;
  attempt: number;
  pid: number;
  task: string;
  kind: LedgerKind;
  /** Wall-clock ms when appended. */
  at: number;
}

interface Pending {
  row: LedgerRow;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Opens the ledger file (creating its table) for appending and reading. */
export class Ledger {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  #pending: Pending[] = [];
  #scheduled = false;

  /**
   * Open (or create) the ledger at `path`. Several processes may open one file.
   * `synchronous` is `"FULL"` (survives a machine crash) or `"NORMAL"` (WAL: survives any
   * process crash, which is all R4 needs, without an fsync per commit). Default `"FULL"`.
   */
  constructor(path: string, synchronous: "FULL" | "NORMAL" = "FULL") {
    this.path = path;
    this.#db = new Database(path);
    this.#db.pragma("busy_timeout = 30000");
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma(`synchronous = ${synchronous === "NORMAL" ? "NORMAL" : "FULL"}`);
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS runs (message_id TEXT NOT NULL, attempt INTEGER NOT NULL, pid INTEGER NOT NULL, task TEXT NOT NULL, kind TEXT NOT NULL, at INTEGER NOT NULL)",
    );
    this.#db.exec("CREATE INDEX IF NOT EXISTS runs_by_message ON runs (message_id)");
    this.#insert = this.#db.prepare("INSERT INTO runs (message_id, attempt, pid, task, kind, at) VALUES (?, ?, ?, ?, ?, ?)");
  }

  /** Append one row; resolves once it is committed with `synchronous=FULL`. */
  append(messageId: string, attempt: number, task: string, kind: LedgerKind = "done"): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ row: { messageId, attempt, pid: process.pid, task, kind, at: Date.now() }, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    try {
      this.#db.transaction(() => {
        for (const { row } of batch) this.#insert.run(row.messageId, row.attempt, row.pid, row.task, row.kind, row.at);
      })();
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
      return;
    }
    for (const p of batch) p.resolve();
  }

  /** Rows appended so far by every process, oldest first. */
  rows(kind?: LedgerKind): LedgerRow[] {
    const sql = "SELECT message_id AS messageId, attempt, pid, task, kind, at FROM runs" + (kind ? " WHERE kind = ?" : "") + " ORDER BY rowid";
    const statement = this.#db.prepare(sql);
    return (kind ? statement.all(kind) : statement.all()) as LedgerRow[];
  }

  /** How many distinct messages have a `done` row. */
  doneCount(): number {
    return (this.#db.prepare("SELECT COUNT(DISTINCT message_id) AS n FROM runs WHERE kind = 'done'").get() as { n: number }).n;
  }

  /** How many `done` rows one process appended. */
  doneCountOf(pid: number): number {
    return (this.#db.prepare("SELECT COUNT(*) AS n FROM runs WHERE kind = 'done' AND pid = ?").get(pid) as { n: number }).n;
  }

  /** Up to `limit` message ids with a `done` row, at random. */
  sampleDone(limit: number): string[] {
    return (this.#db.prepare("SELECT DISTINCT message_id AS id FROM runs WHERE kind = 'done' ORDER BY random() LIMIT ?").all(limit) as { id: string }[]).map((r) => r.id);
  }

  /** Close the connection (pending appends are flushed first). */
  close(): void {
    if (this.#pending.length > 0) this.#flush();
    this.#db.close();
  }
}
