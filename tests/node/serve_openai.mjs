// serve_openai.mjs - the official `openai` npm client against a running
// `moestream serve` (started by tests/serve_openai.sh).
// usage: node serve_openai.mjs BASE_URL API_KEY MODEL_ID PROMPT_TOKENS TEXT_OUT
// Also content as text parts, the developer role, system_fingerprint and the
// 400s for unsupported fields (n, tools, logprobs, response_format).
// Prints one "ok: ..." or "FAIL: ..." line per check, writes the reply text
// (reasoning + answer) of the temperature-0 request to TEXT_OUT so the shell
// can compare it with `moestream run`, and exits 1 if any check failed.
import { writeFileSync } from "node:fs";
import OpenAI from "openai";

const [baseURL, apiKey, modelId, promptTokensArg, textOut] = process.argv.slice(2);
const promptTokens = Number(promptTokensArg);
// maxRetries 0: the client retries 5xx and connection errors by default,
// which would hide a server fault behind a later success.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
let fails = 0;
function check(name, cond, detail) {
  if (cond) {
    console.log(`ok: ${name}`);
  } else {
    console.log(`FAIL: ${name}${detail === undefined ? "" : ` (${detail})`}`);
    fails++;
  }
}
async function expectError(name, cls, status, fn) {
  try {
    await fn();
    check(name, false, "no error raised");
  } catch (e) {
    check(name, e instanceof cls && e.status === status,
          `got ${e?.constructor?.name} status ${e?.status}: ${e?.message}`);
  }
}

const N = 16;
const req = { model: modelId, messages: [{ role: "user", content: "hello" }], max_tokens: N, temperature: 0 };

const models = await client.models.list();
check("models.list() returns the served model",
      models.data.length === 1 && models.data[0].id === modelId, JSON.stringify(models.data));

const r = await client.chat.completions.create(req);
const msg = r.choices[0].message;
const u = r.usage;
check("non-streamed chat completion: object, role, string content",
      r.object === "chat.completion" && msg.role === "assistant" && typeof msg.content === "string",
      JSON.stringify(r));
check(`non-streamed usage: ${N} completion tokens, prompt tokens as run renders (${promptTokens}), total = sum`,
      u.completion_tokens === N && u.prompt_tokens === promptTokens &&
      u.total_tokens === u.prompt_tokens + u.completion_tokens && r.choices[0].finish_reason === "length",
      JSON.stringify(u));
const full = (msg.reasoning_content ?? "") + msg.content;

const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
let reasoning = "", content = "", nDelta = 0, usage = null, finish = null, afterUsage = 0;
for await (const chunk of stream) {
  if (usage) afterUsage++;
  if (chunk.usage) usage = chunk.usage;
  for (const ch of chunk.choices) {
    if (ch.delta.reasoning_content) reasoning += ch.delta.reasoning_content;
    if (ch.delta.content) content += ch.delta.content;
    if (ch.delta.reasoning_content || ch.delta.content) nDelta++;
    if (ch.finish_reason) finish = ch.finish_reason;
  }
}
check("stream: several text chunks and a finish_reason", nDelta > 1 && finish === "length",
      `${nDelta} chunks, finish ${finish}`);
check("stream: R1 reasoning arrives in delta.reasoning_content",
      reasoning.length > 0 && reasoning === (msg.reasoning_content ?? ""),
      `${JSON.stringify(reasoning)} vs ${JSON.stringify(msg.reasoning_content)}`);
check("stream: include_usage gives a last usage chunk equal to the non-streamed usage",
      usage !== null && afterUsage === 0 && usage.completion_tokens === u.completion_tokens &&
      usage.prompt_tokens === u.prompt_tokens && usage.total_tokens === u.total_tokens,
      JSON.stringify(usage));
check("temperature 0: streamed text equals the non-streamed text",
      reasoning + content === full && content === msg.content,
      `${JSON.stringify(reasoning + content)} vs ${JSON.stringify(full)}`);
writeFileSync(textOut, full + "\n", "utf8");

const wrong = new OpenAI({ baseURL, apiKey: "not-the-key", maxRetries: 0, timeout: 60000 });
await expectError("wrong API key: AuthenticationError 401", OpenAI.AuthenticationError, 401,
                  () => wrong.chat.completions.create(req));
await expectError("wrong API key on models.list(): AuthenticationError 401", OpenAI.AuthenticationError, 401,
                  () => wrong.models.list());
await expectError("messages not an array: BadRequestError 400", OpenAI.BadRequestError, 400,
                  () => client.chat.completions.create({ ...req, messages: "hello" }));
await expectError("temperature out of range: BadRequestError 400", OpenAI.BadRequestError, 400,
                  () => client.chat.completions.create({ ...req, temperature: 7 }));

// content as an array of text parts, as clients for multimodal models send it:
// the same prompt as the plain string, so the same tokens and reply.
const parts = await client.chat.completions.create({
  ...req, messages: [{ role: "user", content: [{ type: "text", text: "hello" }] }] });
check("content as text parts: same prompt tokens and reply as the plain string",
      parts.usage.prompt_tokens === u.prompt_tokens &&
      (parts.choices[0].message.reasoning_content ?? "") + parts.choices[0].message.content === full,
      JSON.stringify(parts.usage));
const twoParts = await client.chat.completions.create({
  ...req, max_tokens: 1,
  messages: [{ role: "user", content: [{ type: "text", text: "hello" }, { type: "text", text: "there" }] }] });
const joined = await client.chat.completions.create({
  ...req, max_tokens: 1, messages: [{ role: "user", content: "hello\nthere" }] });
check("two text parts are joined with a newline",
      twoParts.usage.prompt_tokens === joined.usage.prompt_tokens &&
      twoParts.usage.prompt_tokens > u.prompt_tokens, `${twoParts.usage.prompt_tokens} vs ${joined.usage.prompt_tokens}`);
// the developer role is the system role under its newer name
const dev = await client.chat.completions.create({
  ...req, max_tokens: 1, messages: [{ role: "developer", content: "Be brief." }, { role: "user", content: "hello" }] });
const sys = await client.chat.completions.create({
  ...req, max_tokens: 1, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hello" }] });
check("developer role renders as system",
      dev.usage.prompt_tokens === sys.usage.prompt_tokens && dev.usage.prompt_tokens > u.prompt_tokens &&
      dev.choices[0].message.reasoning_content === sys.choices[0].message.reasoning_content,
      `${dev.usage.prompt_tokens} vs ${sys.usage.prompt_tokens}`);
check("system_fingerprint is set", typeof r.system_fingerprint === "string" && r.system_fingerprint.length > 0,
      r.system_fingerprint);
await expectError("an image part: BadRequestError 400", OpenAI.BadRequestError, 400,
                  () => client.chat.completions.create({ ...req, messages: [{ role: "user", content: [
                    { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }] }));
await expectError("n: 2 is refused as unsupported (400)", OpenAI.BadRequestError, 400,
                  () => client.chat.completions.create({ ...req, n: 2 }));
await expectError("tools are refused as unsupported (400)", OpenAI.BadRequestError, 400,
                  () => client.chat.completions.create({ ...req, tools: [{ type: "function",
                    function: { name: "f", parameters: { type: "object", properties: {} } } }] }));
await expectError("logprobs are refused as unsupported (400)", OpenAI.BadRequestError, 400,
                  () => client.chat.completions.create({ ...req, logprobs: true, top_logprobs: 2 }));
await expectError("response_format json_object is refused as unsupported (400)", OpenAI.BadRequestError, 400,
                  () => client.chat.completions.create({ ...req, response_format: { type: "json_object" } }));
process.exit(fails ? 1 : 0);
