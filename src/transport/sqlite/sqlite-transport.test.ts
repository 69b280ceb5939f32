import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runTransportConformance } from "../../../tests/conformance/transport-conformance.ts";
import { SqliteTransport } from "./sqlite-transport.ts";

// One temporary folder per suite run; the same store key opens the same file.
const dir = mkdtempSync(join(tmpdir(), "ferry-sqlite-conformance-"));
runTransportConformance({
  name: "sqlite",
  create: async (store) => new SqliteTransport({ path: join(dir, `${store}.db`) }),
  cleanup: async () => rmSync(dir, { recursive: true, force: true }),
});
