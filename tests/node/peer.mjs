// A Node BullMQ peer for bullpen's interop tests: one command per run, JSON on stdout.
//
//   node peer.mjs <redis-url> <queue> add <name> <json-data>      -> {"id", "returnvalue"} once done
//   node peer.mjs <redis-url> <queue> work <seconds> [record]     -> one JSON line per finished job
//   node peer.mjs <redis-url> <queue> upsert <id> <pattern> <name> -> {"ok": true}
//   node peer.mjs <redis-url> <queue> schedulers                  -> getJobSchedulers() as JSON
//   node peer.mjs <redis-url> <queue> counts                      -> getJobCounts() as JSON
//   node peer.mjs <redis-url> <queue> pause                       -> {"paused": true}
//   node peer.mjs <redis-url> <queue> workers                     -> getWorkers() as JSON
//   node peer.mjs <redis-url> <queue> metrics <completed|failed>  -> getMetrics() as JSON
//   node peer.mjs <redis-url> <queue> job <id>                    -> the job as Node reads it
import { Queue, QueueEvents, Worker } from "bullmq";
import IORedis from "ioredis";

const [url, queueName, command, ...args] = process.argv.slice(2);
const target = new URL(url);
const connection = {
  host: target.hostname,
  port: Number(target.port || 6379),
  db: Number(target.pathname.slice(1) || 0),
  password: target.password ? decodeURIComponent(target.password) : undefined,
  // BullMQ's workers block on BZPOPMIN; ioredis must not give up on a quiet connection.
  maxRetriesPerRequest: null,
};
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");

async function add(name, json) {
  const queue = new Queue(queueName, { connection });
  // From the stream's start (each test's queue is new): waitUntilReady resolves before the
  // first XREAD, and reading from '$' missed a completion written in between.
  const events = new QueueEvents(queueName, { connection, lastEventId: "0-0" });
  await events.waitUntilReady();
  const job = await queue.add(name, JSON.parse(json), { attempts: 1 });
  const returnvalue = await job.waitUntilFinished(events, 30_000);
  print({ id: job.id, returnvalue });
  await Promise.all([events.close(), queue.close()]);
}

async function work(seconds, record) {
  // `record` makes runs visible next to bullpen's sample app: same list, same fields.
  // PEER_METRICS_MAX_DATA_POINTS turns on BullMQ's per-minute metrics; a job whose data has
  // `fail: true` fails.
  const maxDataPoints = Number(process.env.PEER_METRICS_MAX_DATA_POINTS || 0);
  const redis = new IORedis(connection);
  const runsKey = `bull:${queueName}:test:runs`;
  const worker = new Worker(
    queueName,
    async (job) => {
      if (record) {
        await redis.rpush(runsKey, JSON.stringify({
          job_id: job.id, scheduler: job.repeatJobKey ?? null, at_ms: Date.now(),
          worker: `node-${process.pid}`, data: job.data,
        }));
      }
      if (job.data && job.data.fail === true) throw new Error("asked to fail");
      return { node: true, name: job.name, data: job.data };
    },
    { connection, concurrency: 5, ...(maxDataPoints ? { metrics: { maxDataPoints } } : {}) },
  );
  worker.on("completed", (job, returnvalue) =>
    print({ id: job.id, name: job.name, data: job.data, returnvalue }));
  await worker.waitUntilReady();
  print({ ready: true });
  // Run for `seconds`, or until SIGTERM; either way close the worker (active jobs finish).
  await new Promise((resolve) => {
    setTimeout(resolve, Number(seconds) * 1000).unref();
    process.once("SIGTERM", resolve);
  });
  await worker.close();
  await redis.quit();
}

async function withQueue(action) {
  const queue = new Queue(queueName, { connection });
  try {
    print(await action(queue));
  } finally {
    await queue.close();
  }
}

switch (command) {
  case "add":
    await add(args[0], args[1]);
    break;
  case "work":
    await work(args[0], args[1] === "record");
    break;
  case "upsert":
    // Node's signature: (id, repeat, {name, data, opts}); the port's differs (see the notes).
    await withQueue(async (queue) => {
      await queue.upsertJobScheduler(args[0], { pattern: args[1] }, { name: args[2], data: {} });
      return { ok: true };
    });
    break;
  case "schedulers":
    await withQueue((queue) => queue.getJobSchedulers(0, -1, true));
    break;
  case "counts":
    await withQueue((queue) => queue.getJobCounts());
    break;
  case "pause":
    await withQueue(async (queue) => {
      await queue.pause();
      return { paused: await queue.isPaused() };
    });
    break;
  case "workers":
    await withQueue((queue) => queue.getWorkers());
    break;
  case "metrics":
    await withQueue((queue) => queue.getMetrics(args[0]));
    break;
  case "job":
    await withQueue(async (queue) => {
      const job = await queue.getJob(args[0]);
      return job && { id: job.id, processedBy: job.processedBy ?? null,
                      attemptsMade: job.attemptsMade, returnvalue: job.returnvalue };
    });
    break;
  default:
    process.stderr.write(`unknown command ${command}\n`);
    process.exit(2);
}
