// The benchmark's local agent: a lean stand-in for the Datadog agent, run
// by Node in its own process so that decoding never shares a thread with a
// sender. `PUT`/`POST /v0.4/traces` bodies are decoded in full with
// @msgpack/msgpack before the answer (`{"rate_by_service":…}`) goes out, so
// a send that resolved is a send whose spans were decoded. `GET /stats`
// answers the running totals (and the agent's CPU time). Unlike the TestAgent it keeps nothing, so a
// million spans cost it no memory.
//
// Prints `{"url": "http://127.0.0.1:PORT"}` once listening; exits with stdin.
import { createServer } from "node:http";
import { decode } from "@msgpack/msgpack";

const stats = { spans: 0, chunks: 0, requests: 0, errors: 0, bytes: 0 };
const answer = JSON.stringify({ rate_by_service: { "service:,env:": 1 } });

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    const cpu = process.cpuUsage();
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ...stats, cpuMicros: cpu.user + cpu.system }));
    return;
  }
  const parts = [];
  req.on("data", (d) => parts.push(d));
  req.on("end", () => {
    if (!req.url.startsWith("/v0.4/traces")) {
      res.writeHead(404);
      res.end();
      return;
    }
    try {
      const body = Buffer.concat(parts);
      const traces = decode(body, { useBigInt64: true });
      if (!Array.isArray(traces)) throw new Error("not an array of chunks");
      let spans = 0;
      for (const chunk of traces) {
        for (const span of chunk) if (typeof span.name !== "string") throw new Error("a span without a name");
        spans += chunk.length;
      }
      stats.spans += spans;
      stats.chunks += traces.length;
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
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }));
});
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
