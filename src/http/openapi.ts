/**
 * The OpenAPI 3.1 document of an app, generated from its registered task and
 * event schemas. A schema's JSON Schema comes from Standard JSON Schema
 * (`~standard.jsonSchema.input`, which zod 4 implements), else a
 * `toJSONSchema()` method, else `{}` (any JSON).
 */
import type { EventDefinition, TaskDefinition } from "../bus/define.ts";
import type { Ferry } from "../bus/ferry.ts";

type Json = Record<string, unknown>;

/** JSON Schema (draft 2020-12, OpenAPI 3.1's dialect) of a Standard Schema, or `{}` when it cannot say. */
export function jsonSchemaOf(schema: unknown): Json {
  if (schema === undefined || schema === null) return {};
  try {
    const std = (schema as { "~standard"?: { jsonSchema?: { input?: (o: { target: string }) => Json } } })["~standard"];
    let out: Json | undefined;
    if (typeof std?.jsonSchema?.input === "function") out = std.jsonSchema.input({ target: "draft-2020-12" });
    else if (typeof (schema as { toJSONSchema?: unknown }).toJSONSchema === "function") out = (schema as { toJSONSchema: () => Json }).toJSONSchema();
    if (!out || typeof out !== "object") return {};
    const { $schema: _drop, ...rest } = out;
    return rest;
  } catch {
    return {};
  }
}

const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });

const COMMON_ERRORS = {
  "400": errorResponse("Invalid JSON, too deep, too many keys, a __proto__ key, a payload failing its schema, a bad option or name"),
  "401": errorResponse("No valid token"),
  "413": errorResponse("Body larger than the limit"),
  "415": errorResponse("Not application/json"),
};

const OPTIONS_PROPERTIES = {
  delay: { description: "Run after this long: ms, or text like \"30s\", \"5m\". Not with runAt.", oneOf: [{ type: "integer", minimum: 0 }, { type: "string" }] },
  runAt: { description: "Run at this time: ms since the epoch or ISO 8601. Not with delay.", oneOf: [{ type: "integer", minimum: 0 }, { type: "string", format: "date-time" }] },
  priority: { type: "integer", minimum: -1000, maximum: 1000, description: "Higher runs first. Default: the task's." },
  maxAttempts: { type: "integer", minimum: 1, maximum: 1000, description: "Attempts before the dead-letter store. Default: the task's." },
  correlationId: { type: "string", maxLength: 200, description: "Ties the message to a business flow. Default: its own id." },
};

function taskPath(task: TaskDefinition): Json {
  return {
    post: {
      operationId: `dispatch_${task.name}`,
      summary: `Enqueue task ${task.name}`,
      tags: ["tasks"],
      parameters: [{ name: "Idempotency-Key", in: "header", required: false, schema: { type: "string", maxLength: 200 } }],
      requestBody: {
        required: true,
        content: { "application/json": { schema: { type: "object", required: ["payload"], additionalProperties: false, properties: { payload: jsonSchemaOf(task.schema), ...OPTIONS_PROPERTIES } } } },
      },
      responses: { "202": { description: "Enqueued", content: { "application/json": { schema: { $ref: "#/components/schemas/TaskAccepted" } } } }, ...COMMON_ERRORS },
    },
  };
}

function eventPath(event: EventDefinition): Json {
  return {
    post: {
      operationId: `publish_${event.name}`,
      summary: `Publish event ${event.name}`,
      tags: ["events"],
      parameters: [{ name: "Idempotency-Key", in: "header", required: false, schema: { type: "string", maxLength: 200 } }],
      requestBody: {
        required: true,
        content: { "application/json": { schema: { type: "object", required: ["payload"], additionalProperties: false, properties: { payload: jsonSchemaOf(event.schema), correlationId: OPTIONS_PROPERTIES.correlationId } } } },
      },
      responses: { "202": { description: "Published", content: { "application/json": { schema: { $ref: "#/components/schemas/EventAccepted" } } } }, ...COMMON_ERRORS },
    },
  };
}

const idParam = { name: "id", in: "path", required: true, schema: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" } };
const channelParam = { name: "channel", in: "path", required: true, schema: { type: "string", pattern: "^[A-Za-z0-9_][A-Za-z0-9_.-]*$", maxLength: 100 } };
const json = (ref: string, description: string) => ({ description, content: { "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } } });
const admin = (summary: string, params: Json[]) => ({ post: { summary, tags: ["admin"], parameters: params, responses: { "200": { description: "Done" }, "403": errorResponse("Needs the admin scope"), "404": errorResponse("Not found") } } });

/** Build the OpenAPI 3.1 document for the tasks registered on `ferry` and the given events. */
export function openApiDocument(ferry: Ferry, events: readonly EventDefinition[], version: string): Json {
  const paths: Json = {};
  for (const task of [...ferry.tasks()].sort((a, b) => a.name.localeCompare(b.name))) paths[`/v1/tasks/${task.name}`] = taskPath(task);
  for (const event of [...events].sort((a, b) => a.name.localeCompare(b.name))) paths[`/v1/events/${event.name}`] = eventPath(event);
  paths["/v1/messages/{id}"] = { get: { summary: "A message's state, attempts, errors and result", tags: ["messages"], parameters: [idParam], responses: { "200": json("MessageStatus", "The message"), "404": errorResponse("No such message") } } };
  paths["/v1/messages/{id}/events"] = { get: { summary: "Server-sent events: state now, each run, the final state", tags: ["messages"], parameters: [idParam], responses: { "200": { description: "text/event-stream", content: { "text/event-stream": {} } } } } };
  paths["/v1/stream"] = { get: { summary: "Server-sent run events of a channel (all channels without one)", tags: ["messages"], parameters: [{ name: "channel", in: "query", required: false, schema: channelParam.schema }], responses: { "200": { description: "text/event-stream", content: { "text/event-stream": {} } } } } };
  paths["/v1/dead/{id}/replay"] = admin("Replay a dead message", [idParam]);
  paths["/v1/dead/{id}"] = { delete: { ...admin("Discard a dead message", [idParam]).post } };
  paths["/v1/channels/{channel}/pause"] = admin("Pause a channel", [channelParam]);
  paths["/v1/channels/{channel}/resume"] = admin("Resume a channel", [channelParam]);
  paths["/metrics"] = { get: { summary: "Prometheus metrics", tags: ["ops"], responses: { "200": { description: "text/plain; version=0.0.4" } } } };
  paths["/healthz"] = { get: { summary: "Liveness (no token needed)", tags: ["ops"], security: [], responses: { "200": { description: "ok" } } } };
  paths["/v1/openapi.json"] = { get: { summary: "This document", tags: ["ops"], responses: { "200": { description: "OpenAPI 3.1" } } } };
  return {
    openapi: "3.1.0",
    info: { title: "Ferry HTTP API", version, description: "Enqueue tasks and events, follow their results, administer dead letters and channels." },
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: {
        Error: { type: "object", required: ["error"], properties: { error: { type: "object", required: ["code", "message"], properties: { code: { type: "string" }, message: { type: "string" }, details: { type: "object" } } } } },
        TaskAccepted: {
          type: "object",
          required: ["id", "task", "channel", "deduplicated", "statusUrl", "eventsUrl"],
          properties: { id: { type: "string" }, task: { type: "string" }, channel: { type: "string" }, deduplicated: { type: "boolean" }, statusUrl: { type: "string" }, eventsUrl: { type: "string" } },
        },
        EventAccepted: {
          type: "object",
          required: ["id", "event", "messages", "ran"],
          properties: { id: { type: "string" }, event: { type: "string" }, messages: { type: "array", items: { $ref: "#/components/schemas/TaskAccepted" } }, ran: { type: "array", items: { type: "string" } } },
        },
        MessageStatus: {
          type: "object",
          properties: {
            id: { type: "string" },
            task: { type: "string" },
            channel: { type: "string" },
            state: { enum: ["waiting", "active", "completed", "cancelled", "dead"] },
            attempt: { type: "integer" },
            maxAttempts: { type: "integer" },
            runAt: { type: "integer" },
            createdAt: { type: "integer" },
            startedAt: { type: ["integer", "null"] },
            finishedAt: { type: ["integer", "null"] },
            correlationId: { type: ["string", "null"] },
            errors: { type: "array", items: { type: "object", properties: { at: { type: "integer" }, attempt: { type: "integer" }, code: { type: "string" }, message: { type: "string" } } } },
            result: {},
          },
        },
      },
    },
  };
}
