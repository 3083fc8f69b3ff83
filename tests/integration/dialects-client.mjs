// The official ollama, @anthropic-ai/sdk and openai (Responses) npm
// clients, unchanged but
// for their base URL and key, against an FLM proxy in front of a mock
// Ollama and a mock vLLM: each call is made of a model of each, so
// one is passed through (Ollama's API to Ollama) and the others are
// translated.  Run by dialects.t: one "ok - ..." or "not ok - ..."
// line per check, "# ..." diagnostics.
//
// usage: FLM_NPM_DIR=DIR FLM_TEST_KEY=KEY node dialects-client.mjs BASEURL
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { check, diag } from './tap.mjs';

const require = createRequire(join(process.env.FLM_NPM_DIR, 'package.json'));
const { Ollama } = require('ollama');
const Anthropic = require('@anthropic-ai/sdk').default ??
    require('@anthropic-ai/sdk');
const OpenAI = require('openai');

const base = process.argv[2];
const key = process.env.FLM_TEST_KEY;
const ENGINES = {
	ollama: 'flm://ollama/llama3.2:1b',
	vllm: 'flm://vllm/meta-llama/Llama-3.2-1B-Instruct',
};
const ollama = new Ollama({ host: base,
    headers: { Authorization: `Bearer ${key}` } });
const anthropic = new Anthropic({ baseURL: base, apiKey: key,
    maxRetries: 0 });
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key,
    maxRetries: 0 });
const WEATHER = {
	name: 'get_weather',
	description: 'The weather in a city',
	input_schema: { type: 'object',
	    properties: { input: { type: 'string' } } },
};

const said = (s, what) => typeof s === 'string' &&
    s.startsWith('Hello from mock ') && s.includes(`you said ${what}`);

await check('ollama: list() names both engines\' models', async () => {
	const r = await ollama.list();
	const names = r.models.map((m) => m.name);

	return Object.values(ENGINES).every((n) => names.includes(n)) ||
	    `got ${JSON.stringify(names)}`;
});

for (const [kind, model] of Object.entries(ENGINES)) {
	await check(`ollama ${kind}: chat() answers, with counts`, async () => {
		const r = await ollama.chat({ model,
		    messages: [{ role: 'user', content: 'Say hello' }] });

		return (said(r.message?.content, 'Say hello') && r.done &&
		    r.done_reason === 'stop' && r.eval_count > 0 &&
		    r.prompt_eval_count > 0 && r.total_duration > 0) ||
		    `got ${JSON.stringify(r)}`;
	});
	await check(`ollama ${kind}: chat({stream: true}) streams the same ` +
	    'answer', async () => {
		let text = '', parts = 0, last = null;

		for await (const p of await ollama.chat({ model, stream: true,
		    messages: [{ role: 'user', content: 'Say hello' }] })) {
			text += p.message?.content ?? '';
			parts++;
			last = p;
		}
		return (said(text, 'Say hello') && parts > 2 && last.done &&
		    last.eval_count > 0) ||
		    `${parts} parts: ${text}; last ${JSON.stringify(last)}`;
	});
	await check(`ollama ${kind}: generate() answers`, async () => {
		const r = await ollama.generate({ model, prompt: 'Why blue',
		    stream: false });

		return (said(r.response, 'Why blue') && r.done) ||
		    `got ${JSON.stringify(r)}`;
	});
	await check(`ollama ${kind}: embed() gives one vector per input`,
	    async () => {
		const r = await ollama.embed({ model, input: ['a', 'b c'] });

		return (r.embeddings?.length === 2 &&
		    r.embeddings[0].length === 8 &&
		    r.embeddings[0].join() !== r.embeddings[1].join()) ||
		    `got ${JSON.stringify(r)}`;
	});
	await check(`ollama ${kind}: chat() with tools gives a tool call`,
	    async () => {
		const r = await ollama.chat({ model, stream: false,
		    tools: [{ type: 'function', function: { name: WEATHER.name,
		    description: WEATHER.description,
		    parameters: WEATHER.input_schema } }],
		    messages: [{ role: 'user', content: 'Paris?' }] });
		const c = r.message?.tool_calls?.[0]?.function;

		return (c?.name === 'get_weather' &&
		    c.arguments?.input === 'Paris?') ||
		    `got ${JSON.stringify(r)}`;
	});
	await check(`anthropic ${kind}: messages.create answers`, async () => {
		const r = await anthropic.messages.create({ model,
		    max_tokens: 64, system: 'Be brief.',
		    messages: [{ role: 'user', content: 'Say hello' }] });

		return (r.type === 'message' && r.role === 'assistant' &&
		    said(r.content?.[0]?.text, 'Say hello') &&
		    r.stop_reason === 'end_turn' &&
		    r.usage?.output_tokens > 0) || `got ${JSON.stringify(r)}`;
	});
	await check(`anthropic ${kind}: messages.stream gives the events ` +
	    'and the same answer', async () => {
		const types = [];
		const s = anthropic.messages.stream({ model, max_tokens: 64,
		    messages: [{ role: 'user', content: 'Say hello' }] });

		s.on('streamEvent', (e) => types.push(e.type));
		const m = await s.finalMessage();
		const want = ['message_start', 'content_block_start',
		    'content_block_delta', 'content_block_stop',
		    'message_delta', 'message_stop'];

		return (said(m.content?.[0]?.text, 'Say hello') &&
		    want.every((t) => types.includes(t)) &&
		    types[0] === 'message_start' &&
		    types.at(-1) === 'message_stop' &&
		    m.usage?.output_tokens > 0) ||
		    `events ${types.join(',')}; ${JSON.stringify(m)}`;
	});
	await check(`anthropic ${kind}: a tool call round trip`, async () => {
		const msgs = [{ role: 'user', content: 'Paris?' }];
		const s = anthropic.messages.stream({ model, max_tokens: 64,
		    tools: [WEATHER], messages: msgs });
		const r = await s.finalMessage();
		const use = r.content?.find((b) => b.type === 'tool_use');

		if (r.stop_reason !== 'tool_use' || use?.name !==
		    'get_weather' || use.input?.input !== 'Paris?')
			return `first answer ${JSON.stringify(r)}`;
		msgs.push({ role: 'assistant', content: r.content });
		msgs.push({ role: 'user', content: [{ type: 'tool_result',
		    tool_use_id: use.id, content: 'Sunny, 21 C' }] });
		const r2 = await anthropic.messages.create({ model,
		    max_tokens: 64, tools: [WEATHER], messages: msgs });

		return (said(r2.content?.[0]?.text, 'Sunny, 21 C') &&
		    r2.stop_reason === 'end_turn') ||
		    `second answer ${JSON.stringify(r2)}`;
	});
	await check(`openai ${kind}: responses.create answers`, async () => {
		const r = await openai.responses.create({ model,
		    instructions: 'Be brief.', input: 'Say hello' });

		return (r.object === 'response' && r.status === 'completed' &&
		    said(r.output_text, 'Say hello') &&
		    r.usage?.output_tokens > 0) || `got ${JSON.stringify(r)}`;
	});
	await check(`openai ${kind}: responses.create({stream: true}) gives ` +
	    'the events and the same answer', async () => {
		const types = [];
		let text = '', done = null;

		for await (const e of await openai.responses.create({ model,
		    stream: true, input: [{ role: 'user',
		    content: [{ type: 'input_text', text: 'Say hello' }] }] })) {
			types.push(e.type);
			if (e.type === 'response.output_text.delta')
				text += e.delta;
			if (e.type === 'response.completed')
				done = e.response;
		}
		return (said(text, 'Say hello') && types[0] ===
		    'response.created' && types.includes(
		    'response.output_text.done') && types.at(-1) ===
		    'response.completed' && done?.output?.[0]?.content?.[0]
		    ?.text === text && done.usage?.output_tokens > 0) ||
		    `events ${types.join(',')}; ${JSON.stringify(done)}`;
	});
	await check(`openai ${kind}: a function call round trip through ` +
	    'responses.stream', async () => {
		const tools = [{ type: 'function', name: WEATHER.name,
		    description: WEATHER.description,
		    parameters: WEATHER.input_schema }];
		const input = [{ role: 'user', content: 'Paris?' }];
		const r = await openai.responses.stream({ model, tools,
		    input }).finalResponse();
		const call = r.output?.find((o) => o.type === 'function_call');

		if (call?.name !== 'get_weather' ||
		    JSON.parse(call.arguments).input !== 'Paris?')
			return `first answer ${JSON.stringify(r)}`;
		input.push(call, { type: 'function_call_output',
		    call_id: call.call_id, output: 'Sunny, 21 C' });
		const r2 = await openai.responses.create({ model, tools,
		    input });

		return said(r2.output_text, 'Sunny, 21 C') ||
		    `second answer ${JSON.stringify(r2)}`;
	});
}

await check('openai: responses.create with store: true is a ' +
    'BadRequestError that says why', async () => {
	try {
		await openai.responses.create({ model: ENGINES.vllm,
		    store: true, input: 'x' });
	} catch (e) {
		return (e.status === 400 && /keeps no responses/.test(
		    e.error?.message)) || `threw ${e.status} ${e.message}`;
	}
	return 'it was accepted';
});

await check('anthropic: messages.countTokens asks vLLM\'s tokenizer',
    async () => {
	const r = await anthropic.messages.countTokens({ model: ENGINES.vllm,
	    system: 'be brief', messages: [{ role: 'user',
	    content: 'one two three' }] });

	return r.input_tokens === 5 || `got ${JSON.stringify(r)}`;
});

await check('anthropic: a missing max_tokens is a BadRequestError with ' +
    'Anthropic\'s error type', async () => {
	try {
		await anthropic.messages.create({ model: ENGINES.vllm,
		    messages: [{ role: 'user', content: 'x' }] });
	} catch (e) {
		return (e.status === 400 &&
		    e.error?.error?.type === 'invalid_request_error' &&
		    /max_tokens/.test(e.error?.error?.message)) ||
		    `threw ${e.status} ${JSON.stringify(e.error)}`;
	}
	return 'it was accepted';
});

await check('anthropic: a wrong key is an AuthenticationError', async () => {
	const bad = new Anthropic({ baseURL: base, apiKey: `${key}x`,
	    maxRetries: 0 });

	try {
		await bad.messages.create({ model: ENGINES.vllm, max_tokens: 8,
		    messages: [{ role: 'user', content: 'x' }] });
	} catch (e) {
		return (e.status === 401 &&
		    e.error?.error?.type === 'authentication_error') ||
		    `threw ${e.status} ${JSON.stringify(e.error)}`;
	}
	return 'it was accepted';
});

await check('ollama: a wrong model is a ResponseError with Ollama\'s ' +
    'error', async () => {
	try {
		await ollama.chat({ model: 'flm://ollama/none', stream: false,
		    messages: [{ role: 'user', content: 'x' }] });
	} catch (e) {
		return (e.status_code === 404 && /none/.test(e.error)) ||
		    `threw ${e.status_code} ${e.error}`;
	}
	return 'it was accepted';
});
