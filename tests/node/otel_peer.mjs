// A Node BullMQ peer with OpenTelemetry (bullmq-otel), for bullpen's tracing interop tests.
// The SDK exports to memory; each command prints the finished spans as JSON lines at the end.
//
//   node otel_peer.mjs <redis-url> <queue> add <name> <json-data>  -> {"id"}, then the spans
//   node otel_peer.mjs <redis-url> <queue> work <count>            -> each job, then the spans
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { Queue, Worker } from "bullmq";
import { BullMQOtel } from "bullmq-otel";

const [url, queueName, command, ...args] = process.argv.slice(2);
const target = new URL(url);
const connection = {
  host: target.hostname, port: Number(target.port || 6379),
  db: Number(target.pathname.slice(1) || 0), maxRetriesPerRequest: null,
};
const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(exporter)],
}));
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
// The options form: bullmq-otel 2.0.1 ignores the two-string form the BullMQ docs still show.
const telemetry = new BullMQOtel({ tracerName: "node-peer", version: "1.0.0" });
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");

function printSpans() {
  for (const span of exporter.getFinishedSpans()) {
    const own = span.spanContext();
    const parent = span.parentSpanContext?.spanId ?? span.parentSpanId ?? null;
    print({
      span: true, name: span.name, kind: SpanKind[span.kind], trace_id: own.traceId,
      span_id: own.spanId, parent_id: parent, attributes: span.attributes,
      events: span.events.map((event) => ({ name: event.name, attributes: event.attributes })),
      links: span.links.map((link) => link.context.spanId), pid: process.pid,
    });
  }
}

if (command === "add") {
  const queue = new Queue(queueName, { connection, telemetry });
  const tracer = trace.getTracer("node-app");
  await tracer.startActiveSpan("POST /signup", async (span) => {
    const job = await queue.add(args[0], JSON.parse(args[1]), { attempts: 1 });
    print({ id: job.id });
    span.end();
  });
  await queue.close();
} else if (command === "work") {
  let left = Number(args[0]);
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  const worker = new Worker(queueName, async (job) => {
    trace.getTracer("node-app").startSpan("node-user-work").end();
    return { node: true, name: job.name };
  }, { connection, telemetry, name: "node-peer" });
  worker.on("completed", (job) => {
    print({ id: job.id, name: job.name, tm: job.opts.telemetry?.metadata ?? null });
    if (--left === 0) done();
  });
  await worker.waitUntilReady();
  print({ ready: true });
  await finished;
  await worker.close();
} else {
  process.stderr.write(`unknown command ${command}\n`);
  process.exit(2);
}
printSpans();
