// Prints Node BullMQ's next fire times for JSON cases on stdin, parsed exactly as BullMQ does.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { CronExpressionParser } = require("cron-parser");

const cases = JSON.parse(readFileSync(0, "utf8"));
const out = cases.map(({ pattern, after_ms, tz, count }) => {
  const options = { currentDate: new Date(after_ms) };
  if (tz) options.tz = tz;
  const interval = CronExpressionParser.parse(pattern, options);
  const times = [];
  try {
    for (let i = 0; i < count; i++) times.push(interval.next().getTime());
  } catch (error) {
    return null; // cron-parser gives up on very sparse patterns ("loop limit exceeded")
  }
  return times;
});
process.stdout.write(JSON.stringify(out));
