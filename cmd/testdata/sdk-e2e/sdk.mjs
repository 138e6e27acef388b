// The real OpenAI and Anthropic SDKs, unmodified, run under `agentkeys run`
// (cmd/run_sdk_test.go starts this with `agentkeys run --credential … --
// node sdk.mjs openai|anthropic`). They read their base URL and key from the
// variables `run` sets; SDK_E2E_UPSTREAM (127.0.0.1:PORT) is the loopback
// server standing in for the API, which the base URL's host is swapped for.
// For each SDK: a completion, a streamed one whose events must arrive one by
// one (the upstream sends the next only after this script has acknowledged
// the previous, directly, not through the proxy), and an API error.
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const up = process.env.SDK_E2E_UPSTREAM;
const which = process.argv[2];

function check(cond, msg) {
  if (!cond) {
    console.error(`sdk-e2e: FAIL (${which}): ${msg}`);
    process.exit(1);
  }
}

async function ack(i) {
  const r = await fetch(`http://${up}/ack?i=${i}`);
  check(r.ok, `ack ${i}: HTTP ${r.status}`);
}

async function runOpenAI() {
  const key = process.env.OPENAI_API_KEY ?? '';
  const base = process.env.OPENAI_BASE_URL ?? '';
  check(key.startsWith('pxr_'), 'OPENAI_API_KEY is not a proxy token');
  check(base.endsWith('/to/api.openai.com/v1'), `OPENAI_BASE_URL = ${base}`);
  const client = new OpenAI({ baseURL: base.replace('/to/api.openai.com/', `/to/${up}/`), apiKey: key, maxRetries: 0 });
  const messages = [{ role: 'user', content: 'hi' }];

  const r = await client.chat.completions.create({ model: 'gpt-test', messages });
  check(r.choices[0].message.content === 'hello from openai', `completion = ${JSON.stringify(r)}`);

  const stream = await client.chat.completions.create({ model: 'gpt-test', messages, stream: true });
  let text = '';
  let i = 0;
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta?.content;
    if (d) {
      text += d;
      await ack(i++);
    }
  }
  check(text === 'one two three', `streamed text = ${JSON.stringify(text)}`);

  try {
    await client.chat.completions.create({ model: 'bad-model', messages });
    check(false, 'no error for bad-model');
  } catch (e) {
    check(e instanceof OpenAI.APIError && e.status === 400 && /no such model/.test(e.message), `error = ${e}`);
  }
}

async function runAnthropic() {
  const key = process.env.ANTHROPIC_API_KEY ?? '';
  const base = process.env.ANTHROPIC_BASE_URL ?? '';
  check(key.startsWith('pxr_'), 'ANTHROPIC_API_KEY is not a proxy token');
  check(base.endsWith('/to/api.anthropic.com'), `ANTHROPIC_BASE_URL = ${base}`);
  const client = new Anthropic({ baseURL: base.replace('/to/api.anthropic.com', `/to/${up}`), apiKey: key, maxRetries: 0 });
  const req = { model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };

  const r = await client.messages.create(req);
  check(r.content[0].text === 'hello from anthropic', `message = ${JSON.stringify(r)}`);

  const stream = await client.messages.create({ ...req, stream: true });
  let text = '';
  let i = 0;
  for await (const ev of stream) {
    if (ev.type === 'content_block_delta') {
      text += ev.delta.text;
      await ack(i++);
    }
  }
  check(text === 'one two three', `streamed text = ${JSON.stringify(text)}`);

  try {
    await client.messages.create({ ...req, model: 'bad-model' });
    check(false, 'no error for bad-model');
  } catch (e) {
    check(e instanceof Anthropic.APIError && e.status === 400 && /no such model/.test(e.message), `error = ${e}`);
  }
}

try {
  if (which === 'openai') await runOpenAI();
  else if (which === 'anthropic') await runAnthropic();
  else check(false, 'usage: node sdk.mjs openai|anthropic');
} catch (e) {
  check(false, `unexpected error: ${e?.stack ?? e}`);
}
console.log(`sdk-e2e: PASS ${which}`);
