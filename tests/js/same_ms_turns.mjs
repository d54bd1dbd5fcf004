// Six agent turns that start in the same millisecond, as a JavaScript app records them: the app stamps each
// span's start itself (startTime, in epoch milliseconds: Date.now(), or a time its framework reported), and
// the turns ran one after the other with no wait between them. Each turn is an invoke_agent span with one
// chat span in it. The collector must keep them in the order they ran.
//
//   node same_ms_turns.mjs <run id> <agent>...
//
// Exports over OTLP/HTTP protobuf to OTEL_EXPORTER_OTLP_ENDPOINT; exits 1 if the collector did not accept
// the spans.

import { diag, DiagConsoleLogger, DiagLogLevel } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

const [runId, ...agents] = process.argv.slice(2);
if (!runId || agents.length === 0) {
  console.error("usage: node same_ms_turns.mjs <run id> <agent>...");
  process.exit(2);
}
diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);

const messages = (role, text) => JSON.stringify([{ role, parts: [{ type: "text", content: text }] }]);

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ "service.name": "js-same-ms" }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
});
provider.register();
const tracer = provider.getTracer("agenttrace-js-test", "1.0.0");

const startTime = Date.now(); // one millisecond for every span of the run
tracer.startActiveSpan("agenttrace.run same-ms", {
  startTime,
  attributes: {
    "agenttrace.span.kind": "run", "agenttrace.run.id": runId, "agenttrace.run.name": "same-ms",
    "agenttrace.run.task": "pass it on", "agenttrace.run.expected": "done",
  },
}, (run) => {
  let input = "pass it on";
  for (const agent of agents) {
    tracer.startActiveSpan(`invoke_agent ${agent}`, {
      startTime,
      attributes: { "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent,
                    "gen_ai.input.messages": messages("user", input) },
    }, (turn) => {
      tracer.startActiveSpan("chat gpt-4o-mini", {
        startTime,
        attributes: { "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                      "gen_ai.request.model": "gpt-4o-mini", "gen_ai.input.messages": messages("user", input),
                      "gen_ai.output.messages": messages("assistant", `${agent} did its part`) },
      }, (chat) => chat.end());
      turn.setAttribute("gen_ai.output.messages", messages("assistant", `${agent} did its part`));
      turn.end();
    });
    input = `${agent} did its part`;
  }
  run.setAttribute("agenttrace.run.answer", "done");
  run.end();
});

try {
  await provider.shutdown();
} catch (error) {
  console.error(`export failed: ${error.message}`);
  process.exit(1);
}
console.log(`exported run ${runId}`);
