import { it } from "node:test";
import { runTransportConformance } from "../../../tests/conformance/transport-conformance.ts";
import { SERVERS, serverSkipReason } from "../../../tests/support/servers.ts";
import { RedisTransport } from "./redis-transport.ts";
import { deleteKeys, uniquePrefix } from "./redis-test-support.ts";

const skip = await serverSkipReason("redis");
if (skip) {
  it("redis transport conformance", { skip }, () => {});
} else {
  // One prefix per run; calls with the same store key share a prefix (one stored queue).
  const base = uniquePrefix("conf");
  const warnings: string[] = [];
  runTransportConformance({
    name: "redis",
    create: (store) => RedisTransport.open({ url: SERVERS.redis, prefix: `${base}-${store}`, onWarning: (w) => warnings.push(w) }),
    cleanup: async () => {
      await deleteKeys(SERVERS.redis, base);
    },
  });
}
