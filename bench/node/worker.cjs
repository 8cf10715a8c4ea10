// A Node BullMQ worker for the benchmarks: `node worker.cjs URL QUEUE CONCURRENCY MODE`.
// MODE "noop" does nothing per job; "lateness" records (start - scheduled tick) per job.
'use strict';
const { Worker } = require('bullmq');
const IORedis = require('ioredis');

const [url, queue, concurrency, mode = 'noop'] = process.argv.slice(2);
const connection = new IORedis(url, { maxRetriesPerRequest: null });
const recorder = new IORedis(url);

async function lateness(job) {
  const started = Date.now();
  const tick = Number(String(job.id).split(':').pop());
  await recorder.rpush(`bench:${queue}:lateness`, String(started - tick));
}

const processor = mode === 'lateness' ? lateness : async () => {};
const worker = new Worker(queue, processor, { connection, concurrency: Number(concurrency) });
worker.on('error', (err) => console.error('worker error', err.message));
worker.waitUntilReady().then(() => console.log('ready'));

async function stop() {
  await worker.close();
  await recorder.quit();
  await connection.quit();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
