// The real `openai` npm client against `baimo serve` on a random-weight tiny model: chat,
// completions, streaming (chunks concatenate to the non-stream text at temperature 0),
// embeddings, models, tools request/response shape, response_format json_schema, logprobs,
// stop, n, seed reproducibility under concurrency, metrics, and the error answers.
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, deadline } from './server.mjs';

deadline(240e3);
const srv = await startServer();
const client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'none', maxRetries: 0,
  timeout: 60e3 });
const MODEL = 'e2e-tiny';
const msgs = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: '你好，百模' }];
let failures = 0;
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log('ok   ' + name + ' (' + (Date.now() - t0) + ' ms)');
  } catch (e) {
    failures++;
    console.log('FAIL ' + name + ': ' + (e.stack || e));
  }
}

async function rawPost(path, body, headers = {}) {
  const r = await fetch(srv.url + path, { method: 'POST', headers: Object.assign(
    { 'Content-Type': 'application/json' }, headers), body });
  return { status: r.status, headers: r.headers, json: await r.json().catch(() => null) };
}

try {
  await check('models list', async () => {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), [MODEL]);
  });

  let greedy;
  await check('chat non-stream', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: msgs,
      max_tokens: 12, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices.length, 1);
    const c = r.choices[0];
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.ok(['stop', 'length'].includes(c.finish_reason));
    assert.ok(r.usage.prompt_tokens > 5);
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    greedy = r;
  });

  await check('chat stream equals non-stream at temperature 0', async () => {
    const stream = await client.chat.completions.create({ model: MODEL, messages: msgs,
      max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '', first = true, finish = null, usage = null, n = 0;
    for await (const ch of stream) {
      n++;
      assert.equal(ch.object, 'chat.completion.chunk');
      if (ch.usage) { usage = ch.usage; assert.equal(ch.choices.length, 0); continue; }
      const d = ch.choices[0].delta;
      if (first) { assert.equal(d.role, 'assistant'); first = false; }
      if (d.content) text += d.content;
      if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
    }
    assert.ok(n >= 3, 'expected several chunks, got ' + n);
    assert.equal(text, greedy.choices[0].message.content);
    assert.equal(finish, greedy.choices[0].finish_reason);
    assert.deepEqual(usage && [usage.prompt_tokens, usage.completion_tokens],
      [greedy.usage.prompt_tokens, greedy.usage.completion_tokens]);
  });

  await check('completions: string and token-id prompts, n=2', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'The capital of France is',
      max_tokens: 6, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.equal(typeof r.choices[0].text, 'string');
    assert.ok(r.usage.completion_tokens <= 6);
    const ids = await client.completions.create({ model: MODEL, prompt: [1, 2, 3, 4],
      max_tokens: 3, temperature: 0 });
    assert.equal(ids.usage.prompt_tokens, 4);
    const two = await client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 4,
      temperature: 1, n: 2, seed: 7 });
    assert.equal(two.choices.length, 2);
    assert.deepEqual(two.choices.map((c) => c.index), [0, 1]);
  });

  await check('embeddings: unit norm, n_embd dims, deterministic', async () => {
    const r = await client.embeddings.create({ model: MODEL, input: ['hello world', '你好', 'hello world'] });
    assert.equal(r.data.length, 3);
    for (const d of r.data) {
      assert.equal(d.embedding.length, 256); // the tiny shape's n_embd
      const norm = Math.sqrt(d.embedding.reduce((a, x) => a + x * x, 0));
      assert.ok(Math.abs(norm - 1) < 1e-4, 'norm ' + norm);
    }
    assert.deepEqual(r.data[0].embedding, r.data[2].embedding);
    assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
    assert.ok(r.usage.prompt_tokens > 3);
  });

  await check('tools: request with tool definitions and a tool round trip', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const r = await client.chat.completions.create({ model: MODEL, max_tokens: 8,
      temperature: 0, tools, tool_choice: 'auto', messages: [
        { role: 'user', content: 'Weather in Beijing?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
          function: { name: 'get_weather', arguments: '{"city":"Beijing"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21}' },
      ] });
    const c = r.choices[0];
    assert.ok(['stop', 'length', 'tool_calls'].includes(c.finish_reason));
    if (c.finish_reason === 'tool_calls') {
      assert.ok(Array.isArray(c.message.tool_calls) && c.message.tool_calls[0].id);
      JSON.parse(c.message.tool_calls[0].function.arguments);
    } else {
      assert.equal(typeof c.message.content, 'string');
    }
    // the tool definitions reach the template: the prompt grows by their rendering
    const bare = await client.chat.completions.create({ model: MODEL, max_tokens: 1,
      messages: [{ role: 'user', content: 'Weather in Beijing?' }] });
    const withTools = await client.chat.completions.create({ model: MODEL, max_tokens: 1, tools,
      messages: [{ role: 'user', content: 'Weather in Beijing?' }] });
    assert.ok(withTools.usage.prompt_tokens > bare.usage.prompt_tokens + 20);
  });

  await check('special tokens in user text stay text', async () => {
    const a = await client.chat.completions.create({ model: MODEL, max_tokens: 1,
      messages: [{ role: 'user', content: '<|im_start|>' }] });
    const b = await client.chat.completions.create({ model: MODEL, max_tokens: 1,
      messages: [{ role: 'user', content: '' }] });
    // "<|im_start|>" as plain text is several tokens, not the one control token
    assert.ok(a.usage.prompt_tokens - b.usage.prompt_tokens > 1,
      `${a.usage.prompt_tokens} vs ${b.usage.prompt_tokens}`);
  });

  await check('response_format json_schema: output parses and validates', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string' },
      age: { type: 'integer' } }, required: ['name', 'age'], additionalProperties: false };
    const r = await client.chat.completions.create({ model: MODEL, messages: msgs,
      max_tokens: 200, temperature: 0.7, seed: 3,
      response_format: { type: 'json_schema', json_schema: { name: 'p', schema } } });
    const c = r.choices[0];
    assert.equal(c.finish_reason, 'stop', 'constrained output must finish: ' + c.message.content);
    const v = JSON.parse(c.message.content);
    assert.deepEqual(Object.keys(v).sort(), ['age', 'name']);
    assert.equal(typeof v.name, 'string');
    assert.ok(Number.isInteger(v.age));
  });

  await check('logprobs with top_logprobs', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: msgs,
      max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3 });
    const lp = r.choices[0].logprobs.content;
    assert.ok(lp.length >= 1 && lp.length <= r.usage.completion_tokens);
    for (const e of lp) {
      assert.ok(e.logprob <= 0);
      assert.equal(e.top_logprobs.length, 3);
      for (let i = 1; i < 3; i++) assert.ok(e.top_logprobs[i - 1].logprob >= e.top_logprobs[i].logprob);
      // greedy: the chosen token is the most likely one
      assert.equal(e.token, e.top_logprobs[0].token);
      assert.ok(Math.abs(e.logprob - e.top_logprobs[0].logprob) < 1e-5);
    }
    const bytes = Buffer.from(lp.flatMap((e) => e.bytes));
    assert.equal(bytes.toString('utf8'), r.choices[0].message.content);
  });

  await check('stop string cuts the output', async () => {
    const full = (await client.completions.create({ model: MODEL, prompt: 'Once upon a time',
      max_tokens: 16, temperature: 0 })).choices[0].text;
    assert.ok(full.length > 6, 'need some text: ' + JSON.stringify(full));
    const stop = full.slice(3, 5);
    const expect = full.slice(0, full.indexOf(stop));
    const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time',
      max_tokens: 16, temperature: 0, stop: [stop] });
    assert.equal(r.choices[0].text, expect);
    assert.equal(r.choices[0].finish_reason, 'stop');
  });

  await check('seed: same seed same text, also under concurrent load', async () => {
    const req = { model: MODEL, messages: msgs, max_tokens: 10, temperature: 1.0, top_k: 0,
      top_p: 1, min_p: 0, seed: 1234 };
    const a = (await client.chat.completions.create(req)).choices[0].message.content;
    const [b, , c] = await Promise.all([
      client.chat.completions.create(req),
      client.chat.completions.create({ ...req, seed: 99, messages: [{ role: 'user', content: 'other' }] }),
      client.chat.completions.create(req),
    ]);
    assert.equal(b.choices[0].message.content, a);
    assert.equal(c.choices[0].message.content, a);
    const d = (await client.chat.completions.create({ ...req, seed: 4321 })).choices[0].message.content;
    assert.notEqual(d, a, 'a different seed should give a different sample');
  });

  await check('errors: negative max_tokens names the param', async () => {
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: msgs,
      max_tokens: -3 }), (e) => e.status === 400 && e.param === 'max_tokens');
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: msgs,
      temperature: 'hot' }), (e) => e.status === 400 && e.param === 'temperature');
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [] }),
      (e) => e.status === 400 && e.param === 'messages');
  });

  await check('errors: invalid JSON says where', async () => {
    const r = await rawPost('/v1/chat/completions', '{"model": "x",\n "messages": [}');
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /line 2, column \d+/);
    assert.equal(r.json.error.type, 'invalid_request_error');
  });

  await check('errors: unknown model 404, unknown route 404, wrong method 405', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: msgs }),
      (e) => e.status === 404 && e.param === 'model');
    assert.equal((await fetch(srv.url + '/v1/nothing')).status, 404);
    const r = await fetch(srv.url + '/v1/chat/completions');
    assert.equal(r.status, 405);
    assert.ok((await r.json()).error.message.includes('POST'));
  });

  await check('errors: too-long prompt names both numbers', async () => {
    const long = 'word '.repeat(600);
    await assert.rejects(client.chat.completions.create({ model: MODEL,
      messages: [{ role: 'user', content: long }] }), (e) => {
      assert.equal(e.status, 400);
      const nums = (e.message.match(/\d+/g) || []).map(Number);
      assert.ok(nums.includes(256), e.message);
      assert.ok(nums.some((n) => n > 600), e.message);
      return true;
    });
  });

  await check('errors: body over 8 MiB is 413', async () => {
    const big = JSON.stringify({ model: MODEL, prompt: 'a'.repeat(9 << 20) });
    const r = await fetch(srv.url + '/v1/completions', { method: 'POST', body: big,
      headers: { 'Content-Type': 'application/json' } }).catch((e) => ({ status: 'err ' + e }));
    assert.equal(r.status, 413);
  });

  await check('metrics count requests and tokens', async () => {
    const t = await (await fetch(srv.url + '/metrics')).text();
    assert.match(t, /baimo_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+/);
    assert.match(t, /baimo_requests_total\{route="\/v1\/chat\/completions",status="400"\} \d+/);
    const gen = Number(t.match(/baimo_generated_tokens_total (\d+)/)[1]);
    assert.ok(gen > 20);
    assert.match(t, /baimo_time_to_first_token_seconds_bucket\{le="\+Inf"\} [1-9]/);
    assert.match(t, /baimo_queue_depth\{model="e2e-tiny"\} 0/);
  });
} finally {
  await srv.stop();
}

// API keys: a second server
const keyed = await startServer(['--api-key', 'sk-right', '--api-key', 'sk-other']);
try {
  await check('401 without a key, 200 with one', async () => {
    const bad = new OpenAI({ baseURL: keyed.url + '/v1', apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e) => e.status === 401);
    assert.equal((await fetch(keyed.url + '/v1/models')).status, 401);
    const good = new OpenAI({ baseURL: keyed.url + '/v1', apiKey: 'sk-other', maxRetries: 0 });
    assert.equal((await good.models.list()).data[0].id, MODEL);
    assert.equal((await fetch(keyed.url + '/health')).status, 200);
  });
} finally {
  await keyed.stop();
}

console.log(failures ? failures + ' check(s) failed' : 'all checks passed');
process.exit(failures ? 1 : 0);
