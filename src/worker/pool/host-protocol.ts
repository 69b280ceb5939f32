/**
 * The messages between the process pool (main thread) and its executor host
 * thread (`executor-host.js`). `key` names one executor child for its whole life.
 */

/** Pool to host. */
export type HostCommand =
  /** `priority`, when given, is the CPU priority (nice value) the child starts at. */
  | { op: "spawn"; key: number; file: string; execArgv: string[]; env: NodeJS.ProcessEnv; priority?: number }
  /** Relay `msg` to the child; one that cannot take it is killed (an `error` event says why). */
  | { op: "send"; key: number; msg: unknown }
  | { op: "kill"; key: number; signal: NodeJS.Signals }
  | { op: "disconnect"; key: number };

/** Host to pool. */
export type HostEvent =
  | { ev: "spawned"; key: number; pid: number }
  | { ev: "message"; key: number; msg: unknown }
  | { ev: "disconnect"; key: number }
  | { ev: "error"; key: number; message: string }
  | { ev: "exit"; key: number; code: number | null; signal: NodeJS.Signals | null };
