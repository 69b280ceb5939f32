import { runTransportConformance } from "../../../tests/conformance/transport-conformance.ts";
import { MemoryTransport } from "./memory-transport.ts";

// Calls with the same store key share one instance until it is closed.
const stores = new Map<string, MemoryTransport>();
runTransportConformance({
  name: "memory",
  create: async (store) => {
    const existing = stores.get(store);
    if (existing && !existing.closed) return existing;
    const t = new MemoryTransport();
    stores.set(store, t);
    return t;
  },
});
