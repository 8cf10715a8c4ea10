// Enqueue timing for Node BullMQ: `node enqueue.cjs URL QUEUE SINGLE_COUNT BULK_COUNT BULK_SIZE`.
// Prints one JSON line: {"single_s": …, "bulk_s": …}.
'use strict';
const { Queue } = require('bullmq');
const IORedis = require('ioredis');

const [url, queue, single, bulk, size] = process.argv.slice(2).map((v, i) => (i < 2 ? v : Number(v)));
const opts = { attempts: 3, backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } };

async function main() {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  const q = new Queue(queue, { connection });
  await q.waitUntilReady();
  await q.add('bench.noop', { i: -1 }, opts); // warm-up: scripts loaded
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < single; i++) await q.add('bench.noop', { i }, opts);
  const singleS = Number(process.hrtime.bigint() - t0) / 1e9;
  t0 = process.hrtime.bigint();
  for (let start = 0; start < bulk; start += size) {
    const batch = [];
    for (let i = start; i < Math.min(bulk, start + size); i++) {
      batch.push({ name: 'bench.noop', data: { i }, opts });
    }
    await q.addBulk(batch);
  }
  const bulkS = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ single_s: singleS, bulk_s: bulkS }));
  await q.close();
  await connection.quit();
}
main().catch((err) => { console.error(err); process.exit(1); });
