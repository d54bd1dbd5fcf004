// A two-agent run as a JavaScript agent app writes it with the official OpenTelemetry SDK: the Planner hands
// the task "2+2" to the Calculator, whose add tool answers wrongly (5). agenttrace.* and gen_ai.* attributes
// are set with JavaScript values: the run id, the expected answer and the answer are numbers.
//
//   node agent_run.mjs <run id>
//
// The exporter follows the standard variables: OTEL_EXPORTER_OTLP_PROTOCOL (http/json, http/protobuf or grpc)
// and OTEL_EXPORTER_OTLP_ENDPOINT. Exits 1 if the collector did not accept the spans (the batch processor's
// shutdown flushes them and fails with the export).

import { diag, DiagConsoleLogger, DiagLogLevel } from "@opentelemetry/api";
import { OTLPTraceExporter as GrpcExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtobufExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

const EXPORTERS = { "http/json": JsonExporter, "http/protobuf": ProtobufExporter, grpc: GrpcExporter };

const runId = Number(process.argv[2]);
const protocol = process.env.OTEL_EXPORTER_OTLP_PROTOCOL;
if (!Number.isInteger(runId) || !(protocol in EXPORTERS)) {
  console.error(`usage: OTEL_EXPORTER_OTLP_PROTOCOL=${Object.keys(EXPORTERS).join("|")} node agent_run.mjs <run id>`);
  process.exit(2);
}
diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);

const messages = (role, text) => JSON.stringify([{ role, parts: [{ type: "text", content: text }] }]);

/** Awaits ``body(span)`` inside a new active span of ``name``, ending the span when ``body`` is done. */
function inSpan(tracer, name, attributes, body) {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await body(span);
    } finally {
      span.end();
    }
  });
}

/** The wait on a model or a tool's I/O: an agent app awaits its calls, and the active span survives the await.
 * (The SDK stamps a span's start with Date.now(), in whole milliseconds: turns with no wait between them can
 * share a start time, and then their order is lost.) */
const latency = () => new Promise((resolve) => setTimeout(resolve, 3));

/** One turn of ``agent`` on ``input``: an invoke_agent span, with ``body(span)`` inside it. */
function agentTurn(tracer, agent, input, body) {
  const attributes = {
    "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent,
    "gen_ai.input.messages": messages("user", input),
  };
  return inSpan(tracer, `invoke_agent ${agent}`, attributes, body);
}

async function agentRun(tracer) {
  const attributes = {
    "agenttrace.span.kind": "run", "agenttrace.run.id": runId, "agenttrace.run.name": "add",
    "agenttrace.run.task": "2+2", "agenttrace.run.expected": 4,
  };
  await inSpan(tracer, "agenttrace.run add", attributes, async (run) => {
    await agentTurn(tracer, "Planner", "2+2", async (planner) => {
      await inSpan(tracer, "chat gpt-4o-mini", {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.input.messages": messages("user", "2+2"),
      }, async (chat) => {
        await latency();
        chat.setAttributes({
          "gen_ai.output.messages": messages("assistant", "Calculator, add 2 and 2"),
          "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 7,
          "gen_ai.response.finish_reasons": ["stop"],
        });
      });
      planner.setAttributes({
        "gen_ai.output.messages": messages("assistant", "Calculator, add 2 and 2"),
        "agenttrace.transfer.target": "Calculator",
      });
    });
    await agentTurn(tracer, "Calculator", "add 2 and 2", async (calculator) => {
      await inSpan(tracer, "execute_tool add", {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "add", "gen_ai.tool.type": "function",
        "gen_ai.tool.call.arguments": JSON.stringify({ a: 2, b: 2 }),
      }, async (tool) => {
        await latency();
        tool.setAttribute("gen_ai.tool.call.result", 5);
      });
      calculator.setAttribute("gen_ai.output.messages", messages("assistant", "5"));
    });
    run.setAttribute("agenttrace.run.answer", 5);
  });
}

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ "service.name": "js-agents" }),
  spanProcessors: [new BatchSpanProcessor(new EXPORTERS[protocol]())],
});
provider.register(); // the global tracer provider and the async-hooks context manager that nests active spans
await agentRun(provider.getTracer("agenttrace-js-test", "1.0.0"));
try {
  await provider.shutdown();
} catch (error) {
  console.error(`${protocol} export failed: ${error.message}`);
  process.exit(1);
}
console.log(`exported run ${runId} over ${protocol}`);
