// Upsert a 1-second job scheduler the Node way: `node scheduler.cjs URL QUEUE ID`.
'use strict';
const { Queue } = require('bullmq');
const IORedis = require('ioredis');

const [url, queue, id] = process.argv.slice(2);
async function main() {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  const q = new Queue(queue, { connection });
  await q.upsertJobScheduler(id, { pattern: '* * * * * *' }, { name: 'bench.lateness', data: {} });
  await q.close();
  await connection.quit();
}
main().catch((err) => { console.error(err); process.exit(1); });
