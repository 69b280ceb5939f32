/**
 * Remove what crashed harness runs left behind: `tsx bench/cleanup.ts fb_abc_1 fb_abc_2 ...`
 * runs every system's clean-up for each namespace given (only `fb_` namespaces).
 */
import { loadAllSystems } from "./systems/index.ts";

const namespaces = process.argv.slice(2);
if (namespaces.length === 0 || namespaces.some((n) => !/^fb_[a-z0-9_]+$/.test(n))) {
  process.stderr.write("usage: tsx bench/cleanup.ts fb_<run>_<n> ... (namespaces as printed by the harness)\n");
  process.exit(2);
}
let failed = 0;
for (const factory of await loadAllSystems()) {
  for (const ns of namespaces) {
    try {
      await factory.cleanup(ns);
    } catch (err) {
      failed++;
      process.stderr.write(`${factory.name} ${ns}: ${(err as Error).message}\n`);
    }
  }
}
process.stderr.write(`cleaned ${namespaces.length} namespace(s); ${failed} clean-up(s) failed\n`);
process.exit(failed ? 1 : 0);
