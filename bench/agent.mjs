// The benchmark's local agent: a lean stand-in for the Datadog agent, run
// by Node in its own process so that decoding never shares a thread with a
// sender. `PUT`/`POST /v0.4/traces` bodies are checked in full before the
// answer (`{"rate_by_service":…}`) goes out, so a send that resolved is a
// send whose spans arrived whole. `GET /info` advertises `/v0.6/stats` and
// `client_drop_p0s` (so that an exporter with `computeStats` computes them),
// and `/v0.6/stats` payloads are counted. `GET /stats` answers the running totals
// (and the agent's CPU time). Unlike the TestAgent it keeps nothing, so a
// million spans cost it no memory.
//
// `--decode walk` (the default) walks every msgpack item of the body, checks
// it is an array of trace chunks of span maps, each with a string `name`,
// and counts the spans, without building JavaScript objects (2–5 µs of
// CPU per span here), so that on a 2-CPU machine the agent is not what
// limits either sender. `--decode full` decodes the body into objects with
// @msgpack/msgpack, which costs the agent about 10–17 µs per span and makes
// it the bottleneck of both senders.
//
// Prints `{"url": "http://127.0.0.1:PORT"}` once listening; exits with stdin.
import { createServer } from "node:http";
import { decode } from "@msgpack/msgpack";

const mode = process.argv.includes("--decode") ? process.argv[process.argv.indexOf("--decode") + 1] : "walk";
if (mode !== "walk" && mode !== "full") throw new Error(`--decode walk|full, got ${mode}`);

/** Span counts of a v0.4 payload, by decoding it into objects. */
function countFull(body) {
  const traces = decode(body, { useBigInt64: true });
  if (!Array.isArray(traces)) throw new Error("not an array of chunks");
  let spans = 0;
  for (const chunk of traces) {
    for (const span of chunk) if (typeof span.name !== "string") throw new Error("a span without a name");
    spans += chunk.length;
  }
  return { chunks: traces.length, spans };
}

const NAME = [0x6e, 0x61, 0x6d, 0x65];

/** Span counts of a v0.4 payload, by walking every msgpack item (throws on any malformed or truncated one). */
function countWalk(b) {
  let p = 0;
  const need = (n) => {
    if (p + n > b.length) throw new Error("truncated");
  };
  const u16 = () => (need(2), (b[p++] << 8) | b[p++]);
  const u32 = () => (need(4), ((b[p++] << 24) >>> 0) + (b[p++] << 16) + (b[p++] << 8) + b[p++]);
  /**
   * The length in an array, map or string header at p (advancing past it), or -1 when the item is not
   * of that kind: `fixMask`/`fixTag` pick its fix form (length in the other bits), then the codes of
   * its 8-bit (0: none), 16-bit and 32-bit lengths.
   */
  const header = (fixMask, fixTag, c8, c16, c32) => {
    need(1);
    const t = b[p];
    if ((t & fixMask) === fixTag) return p++, t & ~fixMask & 0xff;
    if (t === c8 && c8) return p++, need(1), b[p++];
    if (t === c16) return p++, u16();
    if (t === c32) return p++, u32();
    return -1;
  };
  const arrayHeader = () => header(0xf0, 0x90, 0, 0xdc, 0xdd);
  const mapHeader = () => header(0xf0, 0x80, 0, 0xde, 0xdf);
  const strHeader = () => header(0xe0, 0xa0, 0xd9, 0xda, 0xdb);
  const skip = (depth) => {
    if (depth > 64) throw new Error("nested too deep");
    need(1);
    const t = b[p++];
    let n = 0;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return;
    if ((t & 0xe0) === 0xa0) n = t & 0x1f;
    else if ((t & 0xf0) === 0x90) { for (let i = t & 0x0f; i > 0; i--) skip(depth + 1); return; }
    else if ((t & 0xf0) === 0x80) { for (let i = 2 * (t & 0x0f); i > 0; i--) skip(depth + 1); return; }
    else switch (t) {
      case 0xcc: case 0xd0: n = 1; break;
      case 0xcd: case 0xd1: n = 2; break;
      case 0xca: case 0xce: case 0xd2: n = 4; break;
      case 0xcb: case 0xcf: case 0xd3: n = 8; break;
      case 0xd9: case 0xc4: need(1); n = b[p++]; break;
      case 0xda: case 0xc5: n = u16(); break;
      case 0xdb: case 0xc6: n = u32(); break;
      case 0xdc: for (let i = u16(); i > 0; i--) skip(depth + 1); return;
      case 0xdd: for (let i = u32(); i > 0; i--) skip(depth + 1); return;
      case 0xde: for (let i = 2 * u16(); i > 0; i--) skip(depth + 1); return;
      case 0xdf: for (let i = 2 * u32(); i > 0; i--) skip(depth + 1); return;
      default: throw new Error(`msgpack type 0x${t.toString(16)} in a v0.4 payload`);
    }
    need(n);
    p += n;
  };
  const chunks = arrayHeader();
  if (chunks < 0) throw new Error("not an array of chunks");
  let spans = 0;
  for (let c = 0; c < chunks; c++) {
    const n = arrayHeader();
    if (n < 0) throw new Error("a chunk that is not an array");
    for (let i = 0; i < n; i++) {
      const fields = mapHeader();
      if (fields < 0) throw new Error("a span that is not a map");
      let named = false;
      for (let f = 0; f < fields; f++) {
        const k = strHeader();
        if (k < 0) throw new Error("a span key that is not a string");
        need(k);
        const isName = k === 4 && b[p] === NAME[0] && b[p + 1] === NAME[1] && b[p + 2] === NAME[2] && b[p + 3] === NAME[3];
        p += k;
        if (isName) {
          const v = strHeader();
          if (v < 0) throw new Error("a span name that is not a string");
          need(v);
          p += v;
          named = true;
        } else skip(0);
      }
      if (!named) throw new Error("a span without a name");
    }
    spans += n;
  }
  if (p !== b.length) throw new Error("bytes after the payload");
  return { chunks, spans };
}

const stats = { decode: mode, connections: 0, spans: 0, chunks: 0, requests: 0, errors: 0, bytes: 0, statsPayloads: 0 };
const answer = JSON.stringify({ rate_by_service: { "service:,env:": 1 } });
// What a Datadog agent's /info says, so that libdatadog turns on client-side stats (and P0 dropping) when asked to.
const info = JSON.stringify({ version: "7.60.0", endpoints: ["/v0.4/traces", "/v0.6/stats"], client_drop_p0s: true });

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/info") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(info);
    return;
  }
  if (req.method === "GET" && req.url === "/stats") {
    const cpu = process.cpuUsage();
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ...stats, cpuMicros: cpu.user + cpu.system }));
    return;
  }
  const parts = [];
  req.on("data", (d) => parts.push(d));
  req.on("end", () => {
    if (req.url.startsWith("/v0.6/stats")) {
      stats.statsPayloads++;
      res.writeHead(200);
      res.end();
      return;
    }
    if (!req.url.startsWith("/v0.4/traces")) {
      res.writeHead(404);
      res.end();
      return;
    }
    try {
      const body = Buffer.concat(parts);
      const { chunks, spans } = mode === "walk" ? countWalk(body) : countFull(body);
      stats.spans += spans;
      stats.chunks += chunks;
      stats.requests++;
      stats.bytes += body.length;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(answer);
    } catch (e) {
      stats.errors++;
      res.writeHead(400, { "content-type": "text/plain" });
      res.end(String(e));
    }
  });
});
server.on("connection", () => stats.connections++);
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }));
});
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
