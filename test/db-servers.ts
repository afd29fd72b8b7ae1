/**
 * A real PostgreSQL and a real Redis for the database instrumentation tests,
 * from Debian's packages (`postgresql`, `redis-server`; `.ci/run` installs
 * them). Each is used where the environment names one already running
 * (`TEST_PG_HOST` / `TEST_PG_PORT`, user `TEST_PG_USER` default `postgres`,
 * database `TEST_PG_DATABASE` default `postgres`, trust auth;
 * `TEST_REDIS_HOST` / `TEST_REDIS_PORT`), else started here: an own data
 * directory in a temp dir, loopback only, a free port, no persistence, and
 * stopped by `stopDbServers()` (and at exit). PostgreSQL refuses to run as
 * root, so as root its data directory is given to Debian's `postgres` user
 * and its programs run through `runuser`.
 *
 * A server that cannot start throws, with its output: the tests fail, they
 * are never skipped.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chownSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { closedPort } from "./helpers.ts";

/** Where a PostgreSQL server listens, and who to connect as. */
export interface PgServer {
  host: string;
  port: number;
  user: string;
  database: string;
}

/** Where a Redis server listens. */
export interface RedisServer {
  host: string;
  port: number;
}

const STARTUP_MS = 30_000;
const started: (() => void)[] = [];
let pg: Promise<PgServer> | undefined;
let redis: Promise<RedisServer> | undefined;

/** The PostgreSQL server of the tests (started once per process). */
export function pgServer(): Promise<PgServer> {
  const env = process.env;
  if (env.TEST_PG_PORT) {
    return Promise.resolve({
      host: env.TEST_PG_HOST || "127.0.0.1",
      port: Number(env.TEST_PG_PORT),
      user: env.TEST_PG_USER || "postgres",
      database: env.TEST_PG_DATABASE || "postgres",
    });
  }
  return (pg ??= startPostgres());
}

/** The Redis server of the tests (started once per process). */
export function redisServer(): Promise<RedisServer> {
  const env = process.env;
  if (env.TEST_REDIS_PORT) return Promise.resolve({ host: env.TEST_REDIS_HOST || "127.0.0.1", port: Number(env.TEST_REDIS_PORT) });
  return (redis ??= startRedis());
}

/** Stops the servers this process started (and removes their data directories). */
export function stopDbServers(): void {
  for (const stop of started.splice(0).reverse()) stop();
  pg = undefined;
  redis = undefined;
}
process.on("exit", stopDbServers);

/** PostgreSQL's server programs: Debian puts them in /usr/lib/postgresql/<major>/bin, off the PATH. */
function pgBin(name: string): string {
  const base = "/usr/lib/postgresql";
  const majors = existsSync(base) ? readdirSync(base).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const major of majors) {
    const bin = join(base, major, "bin", name);
    if (existsSync(bin)) return bin;
  }
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).stdout?.trim();
  if (found) return found;
  throw new Error(`PostgreSQL's ${name} is not installed: run \`bash .ci/run\`, or \`apt-get install -y postgresql\``);
}

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

/** A command as the postgres user when this process is root (PostgreSQL refuses root). */
function asPostgres(cmd: string[]): string[] {
  return isRoot() ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd;
}

/** The uid and gid of Debian's `postgres` user. */
function postgresIds(): { uid: number; gid: number } {
  const r = spawnSync("id", ["postgres"], { encoding: "utf8" });
  const uid = Number(r.stdout?.match(/uid=(\d+)/)?.[1]);
  const gid = Number(r.stdout?.match(/gid=(\d+)/)?.[1]);
  if (r.status !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new Error(`running as root, and there is no postgres user to run PostgreSQL as (id postgres: ${r.stderr})`);
  }
  return { uid, gid };
}

async function startPostgres(): Promise<PgServer> {
  const dir = mkdtempSync(join(tmpdir(), "dd-ffi-pg-"));
  const data = join(dir, "data");
  if (isRoot()) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  const initdb = asPostgres([pgBin("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
  const init = spawnSync(initdb[0], initdb.slice(1), { encoding: "utf8" });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (exit ${init.status ?? init.error}):\n${init.stdout}${init.stderr}`);
  }
  const port = await closedPort();
  const cmd = asPostgres([
    pgBin("postgres"),
    "-D", data,
    "-p", String(port),
    "-c", "listen_addresses=127.0.0.1",
    "-c", `unix_socket_directories=${dir}`,
    "-c", "fsync=off",
    "-c", "logging_collector=off",
  ]);
  const log = join(dir, "server.log");
  const child = spawnLogged(cmd, log);
  await ready(child, "postgres", log, /database system is ready to accept connections/);
  started.push(() => {
    // pg_ctl signals the postmaster by the pid in its data directory, and waits for it to exit.
    const stop = asPostgres([pgBin("pg_ctl"), "stop", "-D", data, "-m", "immediate", "-w"]);
    spawnSync(stop[0], stop.slice(1), { stdio: "ignore" });
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  return { host: "127.0.0.1", port, user: "postgres", database: "postgres" };
}

async function startRedis(): Promise<RedisServer> {
  const found = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).stdout?.trim();
  const bin = found || "/usr/bin/redis-server";
  if (!existsSync(bin)) throw new Error("redis-server is not installed: run `bash .ci/run`, or `apt-get install -y redis-server`");
  const dir = mkdtempSync(join(tmpdir(), "dd-ffi-redis-"));
  const port = await closedPort();
  const log = join(dir, "server.log");
  const child = spawnLogged([bin, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"], log);
  await ready(child, "redis-server", log, /Ready to accept connections/);
  started.push(() => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  return { host: "127.0.0.1", port };
}

/**
 * Starts a server with its output going to `log` (no pipe, and unreferenced: a test process whose
 * tests are done exits, and its exit handler stops the server).
 */
function spawnLogged(cmd: string[], log: string): ChildProcess {
  const fd = openSync(log, "a");
  try {
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ["ignore", fd, fd] });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

/** Waits for `pattern` in a server's log; throws with the log when the server exits first or takes too long. */
async function ready(child: ChildProcess, name: string, log: string, pattern: RegExp): Promise<void> {
  let exited: string | undefined;
  let failed: string | undefined;
  child.once("exit", (code, signal) => (exited = String(code ?? signal)));
  child.once("error", (e) => (failed = e.message));
  const until = Date.now() + STARTUP_MS;
  const output = () => (existsSync(log) ? readFileSync(log, "utf8").slice(-8000) : "");
  for (;;) {
    if (pattern.test(output())) return;
    if (failed !== undefined) throw new Error(`${name} could not be started: ${failed}`);
    if (exited !== undefined) throw new Error(`${name} exited at startup (${exited}):\n${output()}`);
    if (Date.now() > until) {
      child.kill("SIGKILL");
      throw new Error(`${name} did not start within ${STARTUP_MS / 1000} s:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
