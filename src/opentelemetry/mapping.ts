/**
 * OpenTelemetry spans to Datadog spans, by the rules the Datadog agent
 * applies to the OTLP spans it receives. Each rule names its source:
 * DataDog/datadog-agent `pkg/trace/transform/transform.go`
 * (`OtelSpanToDDSpan`, `otelSpanToDDSpanMinimal`, `Status2Error`,
 * `GetDDKeyForOTLPAttribute`, `SetMetaOTLPIfEmpty`, `SetMetricOTLPIfEmpty`),
 * `pkg/trace/traceutil/otel_util.go` (`GetOTelOperationNameV2`,
 * `GetOTelResourceV2`, `GetOTelSpanType`, `GetOTelService`,
 * `OTelSpanKindName`, `OTelTraceIDToUint64`), `pkg/trace/api/otlp.go`
 * (`computeTopLevelAndMeasured`, `receiveResourceSpansV2`), and
 * DataDog/opentelemetry-mapping-go `pkg/otlp/attributes/attributes.go`
 * (`HTTPMappings`).
 *
 * Pure functions over plain data: nothing here loads `@opentelemetry/*`.
 *
 * @module
 */
import type {
  OtelAttributes as Attributes,
  OtelAttributeValue as AttributeValue,
  OtelHrTime as HrTime,
  OtelLink as Link,
  OtelSpanContext as SpanContext,
  OtelSpanStatus as SpanStatus,
} from "./types.ts";
import type { Span, SpanEvent, SpanEventAttribute, SpanLink } from "../span.ts";

/** OpenTelemetry's `SpanKind` values (`@opentelemetry/api`), by number. */
const KIND_INTERNAL = 0;
const KIND_SERVER = 1;
const KIND_CLIENT = 2;
const KIND_PRODUCER = 3;
const KIND_CONSUMER = 4;

/** `SpanStatusCode.ERROR` of `@opentelemetry/api`. */
const STATUS_ERROR = 2;

/**
 * `span.kind` values, by OTel `SpanKind` (datadog-agent
 * `pkg/trace/traceutil/otel_util.go`, `OTelSpanKindName`).
 */
const KIND_NAMES = ["internal", "server", "client", "producer", "consumer"] as const;

/**
 * The names of OTLP span kinds as the agent prints them (pdata's
 * `SpanKind.String()`), the last fallback of the operation name in
 * `GetOTelOperationNameV2`.
 */
const KIND_STRINGS = ["Internal", "Server", "Client", "Producer", "Consumer"] as const;

/** `otel.status_code` values by `SpanStatusCode` (pdata's `StatusCode.String()`). */
const STATUS_STRINGS = ["Unset", "Ok", "Error"] as const;

/** The service when neither the span nor the resource has `service.name` (otel_util.go, `DefaultOTLPServiceName`). */
export const DEFAULT_SERVICE = "otlpresourcenoservicename";

/** Longest resource the agent keeps (`normalize.MaxResourceLen`). */
const MAX_RESOURCE_LENGTH = 5000;

/** `db.system` values to span types (otel_util.go, `dbTypes`); any other system is `db`. */
const DB_TYPES: Readonly<Record<string, string>> = {
  ...Object.fromEntries(
    [
      "other_sql", "mssql", "mysql", "oracle", "db2", "postgresql", "redshift", "cloudscape", "hsqldb", "maxdb",
      "ingres", "firstsql", "edb", "cache", "firebird", "derby", "informix", "mariadb", "sqlite", "sybase", "teradata",
      "vertica", "h2", "coldfusion", "cockroachdb", "progress", "hanadb", "adabas", "filemaker", "instantdb",
      "interbase", "netezza", "pervasive", "pointbase", "clickhouse",
    ].map((system) => [system, "sql"]),
  ),
  cassandra: "cassandra",
  redis: "redis",
  memcached: "memcached",
  mongodb: "mongodb",
  elasticsearch: "elasticsearch",
  opensearch: "opensearch",
};

/**
 * OTel HTTP semantic conventions to Datadog's names (opentelemetry-mapping-go
 * `pkg/otlp/attributes/attributes.go`, `HTTPMappings`).
 */
const HTTP_MAPPINGS: Readonly<Record<string, string>> = {
  "client.address": "http.client_ip",
  "http.response.body.size": "http.response.content_length",
  "http.response.status_code": "http.status_code",
  "http.request.body.size": "http.request.content_length",
  "http.request.header.referrer": "http.referrer",
  "http.request.method": "http.method",
  "http.route": "http.route",
  "network.protocol.version": "http.version",
  "server.address": "http.server_name",
  "url.full": "http.url",
  "user_agent.original": "http.useragent",
};

/** Reason phrases of the error statuses, for `error.message` when nothing better is known (Go's `http.StatusText`). */
const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
  405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
  409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed", 413: "Request Entity Too Large",
  414: "Request URI Too Long", 415: "Unsupported Media Type", 416: "Requested Range Not Satisfiable",
  417: "Expectation Failed", 418: "I'm a teapot", 421: "Misdirected Request", 422: "Unprocessable Entity",
  423: "Locked", 424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required",
  429: "Too Many Requests", 431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
  500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
  504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates",
  507: "Insufficient Storage", 508: "Loop Detected", 510: "Not Extended", 511: "Network Authentication Required",
};

/** Attribute maps as OTel gives them (values may be undefined). */
type AttributeMap = Attributes;

/** An OTel span event, as `ReadableSpan.events` holds them. */
export interface OtelEvent {
  /** The event's name, e.g. `"exception"`. */
  readonly name: string;
  /** When it happened. */
  readonly time: HrTime;
  /** Its attributes. */
  readonly attributes?: Attributes;
}

/** The parts of an OTel span the mapping reads (a `ReadableSpan` has them all). */
export interface OtelSpanData {
  /** The OTel span name. */
  readonly name: string;
  /** `SpanKind` (0 internal, 1 server, 2 client, 3 producer, 4 consumer). */
  readonly kind: number;
  /** The span's attributes. */
  readonly attributes: Attributes;
  /** The resource's attributes (`{}` for none). */
  readonly resourceAttributes: Attributes;
  /** The status. */
  readonly status: SpanStatus;
  /** The span events. */
  readonly events: readonly OtelEvent[];
  /** The instrumentation scope. */
  readonly scope?: { readonly name: string; readonly version?: string };
}

/** What {@link mapSpanData} decides: the Datadog fields that follow from attributes, kind, status and events. */
export interface MappedFields {
  /** The operation name. */
  name: string;
  /** The service. */
  service: string;
  /** The resource. */
  resource: string;
  /** The span type. */
  type: string;
  /** 1 when the status is an error. */
  error: number;
  /** String tags. */
  meta: Record<string, string>;
  /** Numeric tags. */
  metrics: Record<string, number>;
}

/**
 * An attribute value as a string, the way pdata's `Value.AsString()` prints
 * it: strings as they are, numbers and booleans in decimal / `true` /
 * `false`, arrays as JSON.
 */
export function asString(value: AttributeValue): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return JSON.stringify(value);
  return String(value);
}

/**
 * Normalizes a tag value as the agent does (`pkg/trace/traceutil/normalize`,
 * `NormalizeTagValue`): lower case; letters, digits, `:`, `.`, `/` and `-`
 * are kept, every run of other characters becomes one `_` (dropped at the
 * end); at most 200 characters.
 */
export function normalizeTagValue(value: string): string {
  if (/^[a-z:][a-z0-9:./-]*$/.test(value) && value.length <= 200) return value;
  let out = "";
  let cut = false;
  let chars = 0;
  for (const ch of value) {
    const lower = ch.toLowerCase();
    const c = lower.length === ch.length ? lower : ch;
    if (/^[\p{L}\p{Nd}:./-]$/u.test(c)) {
      if (cut) out += "_";
      cut = false;
      out += c;
    } else {
      cut = true;
    }
    if (++chars >= 200) break;
  }
  return out;
}

/** An attribute as a string (normalized or not); undefined when absent (otel_util.go, `GetOTelAttrVal`). */
function attr(map: AttributeMap, normalize: boolean, key: string): string | undefined {
  const value = map[key];
  if (value === undefined || value === null) return undefined;
  const text = asString(value);
  return normalize ? normalizeTagValue(text) : text;
}

/**
 * The first of `key` and `alt` in the span's attributes, else in the
 * resource's; `""` when none is there (otel_util.go,
 * `GetOTelAttrFromEitherMap`: the span takes precedence, the first key
 * present wins).
 */
function either(span: AttributeMap, resource: AttributeMap, normalize: boolean, key: string, alt?: string): string {
  const fromSpan = attr(span, normalize, key) ?? (alt === undefined ? undefined : attr(span, normalize, alt));
  if (fromSpan) return fromSpan;
  return attr(resource, normalize, key) ?? (alt === undefined ? undefined : attr(resource, normalize, alt)) ?? "";
}

/**
 * The Datadog operation name (otel_util.go, `GetOTelOperationNameV2`):
 * `operation.name` if set; else `http.server.request` /
 * `http.client.request` for HTTP, `<db.system>.query` for a database
 * client, `<messaging.system>.<messaging.operation>`, `aws.<service>.request`,
 * `<rpc.system>.client.request` / `.server.request`,
 * `<faas.invoked_provider>.<faas.invoked_name>.invoke`,
 * `<faas.trigger>.invoke`, `graphql.server.request`,
 * `<network.protocol.name>.server.request` (or `server.request`,
 * `client.request`), and last the span kind (`Internal`, `Producer`,
 * `Consumer`).
 */
export function operationName(kind: number, span: Attributes, resource: Attributes): string {
  const operation = either(span, resource, true, "operation.name");
  if (operation) return operation;
  const isClient = kind === KIND_CLIENT;
  const isServer = kind === KIND_SERVER;
  if (either(span, resource, false, "http.request.method", "http.method")) {
    if (isServer) return "http.server.request";
    if (isClient) return "http.client.request";
  }
  const db = either(span, resource, true, "db.system");
  if (db && isClient) return `${db}.query`;
  const system = either(span, resource, true, "messaging.system");
  const op = either(span, resource, true, "messaging.operation");
  if (system && op && kind !== KIND_INTERNAL) return `${system}.${op}`;
  const rpc = either(span, resource, true, "rpc.system");
  if (rpc === "aws-api" && isClient) {
    const service = either(span, resource, true, "rpc.service");
    return service ? `aws.${service}.request` : "aws.client.request";
  }
  if (rpc && isClient) return `${rpc}.client.request`;
  if (rpc && isServer) return `${rpc}.server.request`;
  const provider = either(span, resource, true, "faas.invoked_provider");
  const invoked = either(span, resource, true, "faas.invoked_name");
  if (provider && invoked && isClient) return `${provider}.${invoked}.invoke`;
  const trigger = either(span, resource, true, "faas.trigger");
  if (trigger && isServer) return `${trigger}.invoke`;
  if (either(span, resource, true, "graphql.operation.type")) return "graphql.server.request";
  const protocol = either(span, resource, true, "network.protocol.name");
  if (isServer) return protocol ? `${protocol}.server.request` : "server.request";
  if (isClient) return protocol ? `${protocol}.client.request` : "client.request";
  return KIND_STRINGS[kind] ?? KIND_STRINGS[KIND_INTERNAL];
}

/**
 * The Datadog resource (otel_util.go, `GetOTelResourceV2`): `resource.name`
 * if set; else the HTTP method (`_OTHER` becomes `HTTP`) plus `http.route`
 * on server spans (`GET /users/:id`); the messaging operation and
 * destination; the RPC method and service; the GraphQL operation type and
 * name; for a database (`db.system`), `db.statement` or `db.query.text`;
 * last the OTel span name. At most 5000 characters.
 */
export function resourceName(name: string, kind: number, span: Attributes, resource: Attributes): string {
  const chosen = pickResource(name, kind, span, resource);
  return chosen.length > MAX_RESOURCE_LENGTH ? chosen.slice(0, MAX_RESOURCE_LENGTH) : chosen;
}

function pickResource(name: string, kind: number, span: AttributeMap, resource: AttributeMap): string {
  const explicit = either(span, resource, false, "resource.name");
  if (explicit) return explicit;
  let method = either(span, resource, false, "http.request.method", "http.method");
  if (method) {
    if (method === "_OTHER") method = "HTTP";
    const route = kind === KIND_SERVER ? either(span, resource, false, "http.route") : "";
    return route ? `${method} ${route}` : method;
  }
  const messaging = either(span, resource, false, "messaging.operation");
  if (messaging) {
    const destination = either(span, resource, false, "messaging.destination", "messaging.destination.name");
    return destination ? `${messaging} ${destination}` : messaging;
  }
  const rpc = either(span, resource, false, "rpc.method");
  if (rpc) {
    const service = either(span, resource, false, "rpc.service");
    return service ? `${rpc} ${service}` : rpc;
  }
  const graphql = either(span, resource, false, "graphql.operation.type");
  if (graphql) {
    const operation = either(span, resource, false, "graphql.operation.name");
    return operation ? `${graphql} ${operation}` : graphql;
  }
  if (either(span, resource, false, "db.system")) {
    const query = either(span, resource, false, "db.statement") || either(span, resource, false, "db.query.text");
    if (query) return query;
  }
  return name;
}

/**
 * The Datadog span type (otel_util.go, `GetOTelSpanType`): `span.type` if
 * set; else `web` for a server span, for a client span the database's type
 * (`sql`, `redis`, `mongodb`, … or `db`) or `http`; else `custom`.
 */
export function spanType(kind: number, span: Attributes, resource: Attributes): string {
  const explicit = either(span, resource, false, "span.type");
  if (explicit) return explicit;
  if (kind === KIND_SERVER) return "web";
  if (kind === KIND_CLIENT) {
    const db = either(span, resource, true, "db.system");
    return db ? DB_TYPES[db] ?? "db" : "http";
  }
  return "custom";
}

/**
 * The service: `service.name` of the span, else of the resource, else
 * `otlpresourcenoservicename`; normalized as a tag value (at most 100
 * characters, lower case, `unnamed-service` when nothing valid is left)
 * (otel_util.go, `GetOTelService`, and `normalize.NormalizeService`).
 */
export function serviceName(span: Attributes, resource: Attributes): string {
  const service = either(span, resource, false, "service.name") || DEFAULT_SERVICE;
  return normalizeTagValue(service.length > 100 ? service.slice(0, 100) : service) || "unnamed-service";
}

/** The `span.kind` tag value of an OTel `SpanKind` (otel_util.go, `OTelSpanKindName`). */
export function kindName(kind: number): string {
  return KIND_NAMES[kind] ?? "unspecified";
}

/**
 * The Datadog key for an attribute (transform.go, `GetDDKeyForOTLPAttribute`):
 * the HTTP conventions renamed (`http.request.method` → `http.method`, …),
 * `http.request.header.*` → `http.request.headers.*`; `""` for the keys the
 * span's fields take (`service.name`, `operation.name`, `resource.name`,
 * `span.type`).
 */
function datadogKey(key: string): string {
  const mapped = HTTP_MAPPINGS[key];
  if (mapped !== undefined) return mapped;
  if (key.startsWith("http.request.header.")) return `http.request.headers.${key.slice("http.request.header.".length)}`;
  if (key === "service.name" || key === "operation.name" || key === "resource.name" || key === "span.type") return "";
  return key;
}

/** An attribute into meta, unless the key is taken (transform.go, `conditionallyMapOTLPAttributeToMeta`, `SetMetaOTLPIfEmpty`). */
function putMeta(out: MappedFields, key: string, value: string): void {
  const k = datadogKey(key);
  if (!k || out.meta[k]) return;
  if (k === "analytics.event") {
    // `SetMetaOTLPIfEmpty`: the event extraction rate (`sampler.KeySamplingRateEventExtraction`).
    const on = /^(1|t|true)$/i.test(value) ? 1 : /^(0|f|false)$/i.test(value) ? 0 : undefined;
    if (on !== undefined && !("_dd1.sr.eausr" in out.metrics)) out.metrics["_dd1.sr.eausr"] = on;
    return;
  }
  out.meta[k] = value;
}

/** A numeric attribute into metrics, unless the key is taken (transform.go, `SetMetricOTLPIfEmpty`: `sampling.priority` → `_sampling_priority_v1`). */
function putMetric(out: MappedFields, key: string, value: number): void {
  let k = datadogKey(key);
  if (!k || k in out.metrics) return;
  if (k === "sampling.priority") k = "_sampling_priority_v1";
  if (!(k in out.metrics)) out.metrics[k] = value;
}

/** An integer from a number or a numeric string attribute. */
function integer(value: AttributeValue | undefined): number | undefined {
  const n = typeof value === "number" ? value : typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The Datadog fields that follow from an OTel span's attributes, kind,
 * status, events and scope, in the agent's order (transform.go,
 * `OtelSpanToDDSpan` and `otelSpanToDDSpanMinimal`):
 *
 * - `service`, `name`, `resource`, `type` by the rules above; meta
 *   `span.kind`; metric `http.status_code` from `http.response.status_code`
 *   (or `http.status_code`);
 * - the span's attributes: numbers to metrics, everything else to meta as
 *   strings, HTTP conventions renamed, a key already set kept;
 * - meta `version` from `service.version`; `_dd.span_events.has_exception`
 *   when an `exception` event exists (`TagSpanIfContainsExceptionEvent`);
 *   `otel.scope.name` / `otel.scope.version` (and the older
 *   `otel.library.*` aliases); `otel.status_code` (`Unset`, `Ok`, `Error`)
 *   and `otel.status_description`;
 * - on an error status: `error` 1 and, from the last `exception` event,
 *   `error.message` (`exception.message`), `error.type`
 *   (`exception.type`), `error.stack` (`exception.stacktrace`); without a
 *   message, the status message, else the HTTP status (`500 Internal Server
 *   Error`) (transform.go, `Status2Error`). The agent names the message
 *   `error.msg`; Datadog tracers, and this mapping, send `error.message`;
 * - meta `env` from `deployment.environment.name` or
 *   `deployment.environment` (normalized);
 * - the resource's attributes to meta (as strings, a key already set
 *   kept); `db.name` from `db.namespace`.
 */
export function mapSpanData(data: OtelSpanData): MappedFields {
  const sattr = data.attributes as AttributeMap;
  const rattr = data.resourceAttributes as AttributeMap;
  const kind = data.kind;
  const out: MappedFields = {
    name: operationName(kind, sattr, rattr),
    service: serviceName(sattr, rattr),
    resource: resourceName(data.name, kind, sattr, rattr),
    type: spanType(kind, sattr, rattr),
    error: data.status.code === STATUS_ERROR ? 1 : 0,
    meta: { "span.kind": kindName(kind) },
    metrics: {},
  };
  const code = integer(sattr["http.response.status_code"] ?? sattr["http.status_code"] ??
    rattr["http.response.status_code"] ?? rattr["http.status_code"]);
  if (code !== undefined && code >= 0) out.metrics["http.status_code"] = code;

  for (const key of Object.keys(sattr)) {
    const value = sattr[key];
    if (value === undefined || value === null) continue;
    if (typeof value === "number") {
      if (Number.isFinite(value)) putMetric(out, key, value);
    } else {
      putMeta(out, key, asString(value));
    }
  }

  if (!("version" in out.meta)) {
    const version = either(sattr, rattr, true, "service.version");
    if (version) out.meta.version = version;
  }
  if (data.events.some((e) => e.name === "exception")) out.meta["_dd.span_events.has_exception"] = "true";
  const scope = data.scope;
  if (scope?.name) {
    out.meta["otel.scope.name"] = scope.name;
    out.meta["otel.library.name"] = scope.name;
  }
  if (scope?.version) {
    out.meta["otel.scope.version"] = scope.version;
    out.meta["otel.library.version"] = scope.version;
  }
  out.meta["otel.status_code"] = STATUS_STRINGS[data.status.code] ?? STATUS_STRINGS[0];
  if (data.status.message) out.meta["otel.status_description"] = data.status.message;
  if (out.error) recordError(out, data, sattr, rattr);

  if (!("env" in out.meta)) {
    const env = either(sattr, rattr, true, "deployment.environment.name", "deployment.environment");
    if (env) out.meta.env = env;
  }
  for (const key of Object.keys(rattr)) {
    const value = rattr[key];
    if (value !== undefined && value !== null) putMeta(out, key, asString(value));
  }
  if (!("db.name" in out.meta)) {
    const namespace = attr(rattr, false, "db.namespace") || attr(sattr, false, "db.namespace");
    if (namespace) out.meta["db.name"] = namespace;
  }
  return out;
}

/** `error.message`, `error.type`, `error.stack` of an error span (transform.go, `Status2Error`), where not already set. */
function recordError(out: MappedFields, data: OtelSpanData, sattr: AttributeMap, rattr: AttributeMap): void {
  const found: Record<string, string> = {};
  for (const event of data.events) {
    if (event.name.toLowerCase() !== "exception") continue;
    const a = (event.attributes ?? {}) as AttributeMap;
    const pairs = [["error.message", "exception.message"], ["error.type", "exception.type"], ["error.stack", "exception.stacktrace"]];
    for (const [to, from] of pairs) {
      const v = a[from];
      if (v !== undefined && v !== null) found[to] = asString(v);
    }
  }
  for (const [k, v] of Object.entries(found)) if (!out.meta[k]) out.meta[k] = v;
  if (out.meta["error.message"]) return;
  if (data.status.message) {
    out.meta["error.message"] = data.status.message;
    return;
  }
  const code = either(sattr, rattr, false, "http.response.status_code", "http.status_code");
  if (code) out.meta["error.message"] = STATUS_TEXT[Number(code)] ? `${code} ${STATUS_TEXT[Number(code)]}` : code;
}

/** Nanoseconds since the epoch of an OTel `HrTime` (`[seconds, nanoseconds]`). */
export function hrTimeToNs(time: HrTime): bigint {
  return BigInt(Math.trunc(time[0])) * 1_000_000_000n + BigInt(Math.trunc(time[1]));
}

/** A 64- or 128-bit id from OTel's lower-case hex; undefined when it is not valid hex of that width or all zeros. */
export function idFromHex(hex: string | undefined, digits: 16 | 32, cache?: Map<string, bigint>): bigint | undefined {
  if (typeof hex !== "string" || hex.length !== digits) return undefined;
  const known = cache?.get(hex);
  if (known !== undefined) return known;
  if (!HEX.test(hex)) return undefined;
  const id = BigInt(`0x${hex}`);
  if (id === 0n) return undefined;
  cache?.set(hex, id);
  return id;
}

const HEX = /^[0-9a-fA-F]+$/;

/** OTel's hex of an id: 16 or 32 lower-case digits. */
export function idToHex(id: bigint, digits: 16 | 32): string {
  return id.toString(16).padStart(digits, "0");
}

/** A span event attribute the trace exporter takes, from an OTel attribute value; undefined when it has none. */
export function eventAttribute(value: AttributeValue | undefined): SpanEventAttribute | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  const items = (value as readonly unknown[]).filter((v) => v !== undefined && v !== null);
  if (items.every((v) => typeof v === "string")) return items as string[];
  if (items.every((v) => typeof v === "boolean")) return items as boolean[];
  if (items.every((v) => typeof v === "number" && Number.isFinite(v))) return items as number[];
  return JSON.stringify(value);
}

/** Typed span event attributes from OTel attributes; undefined when none is left. */
export function eventAttributes(attributes: Attributes | undefined): Record<string, SpanEventAttribute> | undefined {
  const out: Record<string, SpanEventAttribute> = {};
  let any = false;
  for (const [k, v] of Object.entries(attributes ?? {})) {
    const a = eventAttribute(v);
    if (a !== undefined) {
      out[k] = a;
      any = true;
    }
  }
  return any ? out : undefined;
}

/**
 * A Datadog span link from an OTel link: the 128-bit trace id, the span
 * id, attributes as strings, the W3C tracestate, and the trace flags with
 * bit 31 set (Datadog's mark that the flags are set, as dd-trace-go's OTel
 * API sends them). Undefined when the ids are not valid.
 */
export function spanLink(link: Link): SpanLink | undefined {
  const traceId = idFromHex(link.context?.traceId, 32);
  const spanId = idFromHex(link.context?.spanId, 16);
  if (traceId === undefined || spanId === undefined) return undefined;
  const out: SpanLink = { traceId, spanId };
  const attributes = link.attributes ?? {};
  const keys = Object.keys(attributes).filter((k) => attributes[k] !== undefined && attributes[k] !== null);
  if (keys.length > 0) out.attributes = Object.fromEntries(keys.map((k) => [k, asString(attributes[k]!)]));
  const tracestate = link.context.traceState?.serialize();
  if (tracestate) out.tracestate = tracestate;
  out.flags = ((link.context.traceFlags & 0xff) | 0x80000000) >>> 0;
  return out;
}

/** The parts of a `ReadableSpan` (sdk-trace-base) that {@link toDatadogSpan} reads. */
export interface ReadableSpanLike {
  /** The OTel span name. */
  readonly name: string;
  /** `SpanKind`: 0 internal, 1 server, 2 client, 3 producer, 4 consumer. */
  readonly kind: number;
  /** The span's ids, trace flags and tracestate. */
  spanContext(): SpanContext;
  /** The parent (sdk-trace-base 2.x). */
  readonly parentSpanContext?: SpanContext;
  /** The parent's span id (sdk-trace-base 1.x). */
  readonly parentSpanId?: string;
  /** The start. */
  readonly startTime: HrTime;
  /** The end. */
  readonly endTime: HrTime;
  /** The status. */
  readonly status: SpanStatus;
  /** The span's attributes. */
  readonly attributes: Attributes;
  /** The span links. */
  readonly links: readonly Link[];
  /** The span events. */
  readonly events: readonly OtelEvent[];
  /** The resource (its attributes). */
  readonly resource: { readonly attributes: Attributes };
  /** The instrumentation scope (sdk-trace-base 2.x). */
  readonly instrumentationScope?: { readonly name: string; readonly version?: string };
  /** The instrumentation scope (sdk-trace-base 1.x's name for it). */
  readonly instrumentationLibrary?: { readonly name: string; readonly version?: string };
}

/**
 * The Datadog span of an ended OTel span, as the agent maps OTLP
 * (transform.go, `OtelSpanToDDSpan`): the fields of {@link mapSpanData};
 * the full 128-bit trace id (the exporter sends its low 64 bits as
 * `trace_id`, as `OTelTraceIDToUint64` does, and the high 64 bits in
 * `_dd.p.tid`), meta `otel.trace_id` (32 hex digits); the span id and the
 * parent's; start and duration in ns; `w3c.tracestate`; links and events
 * as native span links and span events (`span_links`, `span_events`, as
 * Datadog tracers send them; the agent keeps OTLP's as JSON in meta
 * `_dd.span_links` and `events`); metrics `_dd.top_level` (a root,
 * server or consumer span) and `_dd.measured` (client or producer)
 * (otlp.go, `computeTopLevelAndMeasured`); `_sampling_priority_v1` from a
 * `sampling.priority` attribute, else from the sampled flag (1 kept, 0
 * not).
 *
 * @param traceIds Parsed trace ids by hex, shared by the spans of a batch (each trace id is parsed once).
 * @returns undefined when the span's trace id or span id is not valid.
 */
export function toDatadogSpan(span: ReadableSpanLike, traceIds?: Map<string, bigint>): Span | undefined {
  const context = span.spanContext();
  const traceId = idFromHex(context.traceId, 32, traceIds);
  const spanId = idFromHex(context.spanId, 16);
  if (traceId === undefined || spanId === undefined) return undefined;
  const parent = span.parentSpanContext?.spanId ?? span.parentSpanId;
  const parentId = (parent && parent !== "0000000000000000" ? idFromHex(parent, 16) : undefined) ?? 0n;
  const mapped = mapSpanData({
    name: span.name,
    kind: span.kind,
    attributes: span.attributes,
    resourceAttributes: span.resource?.attributes ?? {},
    status: span.status,
    events: span.events,
    scope: span.instrumentationScope ?? span.instrumentationLibrary,
  });
  const start = hrTimeToNs(span.startTime);
  const end = hrTimeToNs(span.endTime);
  const { meta, metrics } = mapped;
  meta["otel.trace_id"] = context.traceId.toLowerCase();
  const tracestate = context.traceState?.serialize();
  if (tracestate && !meta["w3c.tracestate"]) meta["w3c.tracestate"] = tracestate;
  if (parentId === 0n || span.kind === KIND_SERVER || span.kind === KIND_CONSUMER) metrics["_dd.top_level"] = 1;
  if (span.kind === KIND_CLIENT || span.kind === KIND_PRODUCER) metrics["_dd.measured"] = 1;
  if (!("_sampling_priority_v1" in metrics)) metrics._sampling_priority_v1 = (context.traceFlags & 1) === 1 ? 1 : 0;
  const out: Span = {
    name: mapped.name,
    service: mapped.service,
    resource: mapped.resource,
    type: mapped.type,
    traceId,
    spanId,
    parentId,
    start,
    duration: end > start ? end - start : 0n,
    error: mapped.error,
    meta,
    metrics,
  };
  const links = span.links.map(spanLink).filter((l): l is SpanLink => l !== undefined);
  if (links.length > 0) out.links = links;
  if (span.events.length > 0) {
    out.events = span.events.map((e): SpanEvent => {
      const event: SpanEvent = { name: e.name, time: hrTimeToNs(e.time) };
      const attributes = eventAttributes(e.attributes);
      if (attributes) event.attributes = attributes;
      return event;
    });
  }
  return out;
}
