/**
 * The app module chaos executor processes load (`ProcessPool({ app })`): the
 * chaos tasks around the ledger named by `FERRY_CHAOS_LEDGER`, which the chaos
 * worker process sets before it starts its pool (`FERRY_CHAOS_LEDGER_SYNC=NORMAL`
 * for a ledger without an fsync per commit). Executors never touch the
 * transport, so the Ferry here sits on an unused in-memory one.
 */
import { createFerry, MemoryTransport } from "../../src/index.ts";
import { chaosTasks } from "./chaos-tasks.ts";
import { Ledger } from "./ledger.ts";

const path = process.env.FERRY_CHAOS_LEDGER;
if (!path) throw new Error("FERRY_CHAOS_LEDGER is not set: the chaos worker process sets it before starting executors");

const synchronous = process.env.FERRY_CHAOS_LEDGER_SYNC === "NORMAL" ? "NORMAL" : "FULL";

export default createFerry({ transport: new MemoryTransport(), tasks: chaosTasks(new Ledger(path, synchronous)) });
