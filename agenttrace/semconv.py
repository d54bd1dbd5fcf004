"""Attribute names: OpenTelemetry GenAI semantic conventions (gen-ai/1.42 layout) and the agenttrace overlay.

The GenAI names are spelled out here rather than imported from
``opentelemetry-semantic-conventions`` so that the SDK keeps working across its
incubating renames; the values are the spec's.
"""

# Operations (gen_ai.operation.name) and the span names built from them.
OP_INVOKE_AGENT = "invoke_agent"
OP_CREATE_AGENT = "create_agent"
OP_EXECUTE_TOOL = "execute_tool"
OP_CHAT = "chat"
OP_TEXT_COMPLETION = "text_completion"
OP_INVOKE_WORKFLOW = "invoke_workflow"  # several agents coordinated: a LangGraph graph, a CrewAI crew
OP_PLAN = "plan"  # an agent's planning / task decomposition

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"  # pre-1.37 name of the provider, still read
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"
GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
GEN_AI_TOOL_DEFINITIONS = "gen_ai.tool.definitions"
ERROR_TYPE = "error.type"

# The agenttrace overlay: what no convention has.
RUN_ID = "agenttrace.run.id"
RUN_NAME = "agenttrace.run.name"
RUN_TASK = "agenttrace.run.task"
RUN_EXPECTED = "agenttrace.run.expected"
RUN_TEAM = "agenttrace.run.team"  # JSON: the team declared at the start, agents that never act included
RUN_OUTCOME = "agenttrace.run.outcome"
RUN_ANSWER = "agenttrace.run.answer"
RUN_FAILURE_REASON = "agenttrace.run.failure_reason"
RUN_TERMINATION = "agenttrace.run.termination"
STEP_INDEX = "agenttrace.step.index"
TRANSFER_TARGET = "agenttrace.transfer.target"
CONTENT_TRUNCATED = "agenttrace.content.truncated"
SPAN_KIND = "agenttrace.span.kind"  # "run" on the root span of a run

RUN_SPAN_NAME = "agenttrace.run"
