// The official openai npm package against Chatkeep's /v1: lists the models, asks the one
// CHATKEEP_MODEL names once without streaming, then continues the same exchange streamed,
// and checks that a wrong key raises the SDK's AuthenticationError. Prints what it saw as
// one JSON line.
//
//   CHATKEEP_URL=http://127.0.0.1:8000/v1 CHATKEEP_KEY=ck_... CHATKEEP_MODEL=... node v1_client.mjs
import OpenAI from "openai";

const baseURL = process.env.CHATKEEP_URL;
const model = process.env.CHATKEEP_MODEL;
const client = new OpenAI({ baseURL, apiKey: process.env.CHATKEEP_KEY, maxRetries: 0 });

const models = await client.models.list();
const question = { role: "user", content: "Hello from Node" };
const first = await client.chat.completions.create({ model, messages: [question] });
const reply = first.choices[0].message.content;

const stream = await client.chat.completions.create({
  model,
  messages: [question, { role: "assistant", content: reply }, { role: "user", content: "And again" }],
  stream: true,
  stream_options: { include_usage: true },
});
let streamed = "";
let usage = null;
for await (const chunk of stream) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}

let refused = null;
try {
  await new OpenAI({ baseURL, apiKey: "ck_not_a_real_key", maxRetries: 0 }).models.list();
} catch (err) {
  refused = { authenticationError: err instanceof OpenAI.AuthenticationError, status: err.status };
}

console.log(
  JSON.stringify({
    models: models.data.map((m) => m.id),
    model: first.model,
    reply,
    usage: first.usage,
    streamed,
    streamedUsage: usage,
    refused,
  }),
);
