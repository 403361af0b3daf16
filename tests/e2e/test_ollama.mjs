// Ollama-compatible routes with fetch: /api/chat and /api/generate streamed as NDJSON (parsed
// line by line) and with "stream": false, /api/tags, /api/show, /api/version, and the
// conversation store routes the web page uses.
import assert from 'node:assert/strict';
import { startServer, deadline } from './server.mjs';

deadline(180e3);
const srv = await startServer();
const MODEL = 'e2e-tiny';
let failures = 0;
async function check(name, fn) {
  try { await fn(); console.log('ok   ' + name); } catch (e) {
    failures++;
    console.log('FAIL ' + name + ': ' + (e.stack || e));
  }
}
const post = (path, body) => fetch(srv.url + path, { method: 'POST',
  headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

// Reads an NDJSON body line by line as it arrives.
async function ndjson(resp) {
  assert.match(resp.headers.get('content-type'), /application\/x-ndjson/);
  const reader = resp.body.getReader(), dec = new TextDecoder();
  let buf = '';
  const out = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let k;
    while ((k = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, k);
      buf = buf.slice(k + 1);
      if (line.trim()) out.push(JSON.parse(line));
    }
  }
  assert.equal(buf.trim(), '');
  return out;
}

function checkFinal(o, max) {
  assert.equal(o.done, true);
  assert.ok(['stop', 'length'].includes(o.done_reason));
  assert.ok(o.prompt_eval_count > 0);
  assert.ok(o.eval_count >= 1 && o.eval_count <= max);
  assert.ok(Number.isInteger(o.total_duration) && o.total_duration > 0);
  assert.ok(!Number.isNaN(Date.parse(o.created_at)));
}

try {
  const messages = [{ role: 'user', content: 'Why is the sky blue?' }];
  const opts = { temperature: 0, num_predict: 8, seed: 1 };
  let one;
  await check('/api/chat stream:false', async () => {
    const r = await post('/api/chat', { model: MODEL, messages, stream: false, options: opts });
    assert.equal(r.status, 200);
    one = await r.json();
    assert.equal(one.model, MODEL);
    assert.equal(one.message.role, 'assistant');
    assert.equal(typeof one.message.content, 'string');
    checkFinal(one, 8);
  });
  await check('/api/chat NDJSON stream concatenates to the same text', async () => {
    const lines = await ndjson(await post('/api/chat', { model: MODEL, messages, options: opts }));
    assert.ok(lines.length >= 2);
    for (const l of lines.slice(0, -1)) assert.equal(l.done, false);
    checkFinal(lines[lines.length - 1], 8);
    assert.equal(lines.map((l) => l.message.content).join(''), one.message.content);
  });
  await check('/api/generate both ways, raw and templated', async () => {
    const a = await (await post('/api/generate', { model: MODEL + ':latest', prompt: 'Hello',
      stream: false, options: opts })).json();
    assert.equal(typeof a.response, 'string');
    checkFinal(a, 8);
    const lines = await ndjson(await post('/api/generate', { model: MODEL, prompt: 'Hello',
      options: opts }));
    assert.equal(lines.map((l) => l.response).join(''), a.response);
    const raw = await (await post('/api/generate', { model: MODEL, prompt: 'Hello', raw: true,
      stream: false, options: opts })).json();
    assert.ok(raw.prompt_eval_count < a.prompt_eval_count, 'raw skips the chat template');
  });
  await check('options are validated', async () => {
    const r = await post('/api/chat', { model: MODEL, messages, options: { top_p: 3 } });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.param, 'options.top_p');
    const s = await post('/api/chat', { model: MODEL, messages, options: { stop: ['\n'],
      num_predict: 4 }, stream: false });
    assert.equal(s.status, 200);
  });
  // A grammar (format = JSON schema) forces a Llama 3 style JSON tool call out of the random
  // model; with tools given, streaming must hold it back and send it as message.tool_calls,
  // the same as stream:false, and a JSON answer that is not a call must lose no text.
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } },
      required: ['city'] } } }];
  const callSchema = { type: 'object', properties: { name: { const: 'get_weather' },
    parameters: { type: 'object', properties: { city: { enum: ['Paris', '北京'] } },
      required: ['city'], additionalProperties: false } },
  required: ['name', 'parameters'], additionalProperties: false };
  const topts = { temperature: 0, num_predict: 64, seed: 1 };
  await check('/api/chat tool calls, streamed and not', async () => {
    const body = { model: MODEL, messages, tools, format: callSchema, options: topts };
    const whole = await (await post('/api/chat', { ...body, stream: false })).json();
    const calls = whole.message.tool_calls;
    assert.ok(Array.isArray(calls) && calls.length === 1, JSON.stringify(whole.message));
    assert.equal(calls[0].function.name, 'get_weather');
    assert.ok(['Paris', '北京'].includes(calls[0].function.arguments.city));
    const lines = await ndjson(await post('/api/chat', body));
    checkFinal(lines[lines.length - 1], 64);
    const streamed = lines.filter((l) => l.message && l.message.tool_calls);
    assert.equal(streamed.length, 1, JSON.stringify(lines));
    assert.deepEqual(streamed[0].message.tool_calls, calls);
    assert.equal(lines.map((l) => l.message.content).join(''), whole.message.content);
  });
  await check('/api/chat with tools: a JSON answer that is no call keeps its text', async () => {
    const schema = { type: 'object', properties: { answer: { enum: ['yes', '是'] } },
      required: ['answer'], additionalProperties: false };
    const body = { model: MODEL, messages, tools, format: schema, options: topts };
    const whole = await (await post('/api/chat', { ...body, stream: false })).json();
    assert.equal(whole.message.tool_calls, undefined);
    const ans = JSON.parse(whole.message.content).answer;
    assert.ok(['yes', '是'].includes(ans));
    const lines = await ndjson(await post('/api/chat', body));
    assert.equal(lines.map((l) => l.message.content).join(''), whole.message.content);
    assert.ok(lines.every((l) => !l.message.tool_calls));
  });
  await check('/api/tags, /api/show, /api/version', async () => {
    const tags = await (await fetch(srv.url + '/api/tags')).json();
    assert.equal(tags.models[0].name, MODEL);
    assert.ok(tags.models[0].size > 0);
    const show = await (await post('/api/show', { model: MODEL })).json();
    assert.equal(show.model_info['general.architecture'], 'qwen2');
    assert.equal(show.model_info['qwen2.embedding_length'], 256);
    assert.match(show.template, /im_start/);
    assert.equal((await post('/api/show', { model: 'nope' })).status, 404);
    const v = await (await fetch(srv.url + '/api/version')).json();
    assert.match(v.version, /^\d+\.\d+\.\d+$/);
  });
  await check('conversation store routes', async () => {
    const c = await (await post('/api/conversations', { title: '天气', messages: [
      { role: 'user', content: '你好' }, { role: 'assistant', content: 'hi' }] })).json();
    assert.match(c.id, /^[0-9a-f]+$/);
    const list = await (await fetch(srv.url + '/api/conversations')).json();
    assert.ok(list.conversations.some((x) => x.id === c.id && x.title === '天气'));
    const put = await fetch(srv.url + '/api/conversations/' + c.id, { method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], settings: { t: 1 } }) });
    assert.equal(put.status, 200);
    const got = await (await fetch(srv.url + '/api/conversations/' + c.id)).json();
    assert.deepEqual(got.messages, [{ role: 'user', content: 'x' }]);
    assert.equal(got.title, '天气');
    assert.deepEqual(got.settings, { t: 1 });
    assert.equal((await fetch(srv.url + '/api/conversations/' + c.id, { method: 'DELETE' })).status, 200);
    assert.equal((await fetch(srv.url + '/api/conversations/' + c.id)).status, 404);
    assert.equal((await post('/api/conversations', { messages: 'no' })).status, 400);
  });
} finally {
  await srv.stop();
}
console.log(failures ? failures + ' check(s) failed' : 'all checks passed');
process.exit(failures ? 1 : 0);
