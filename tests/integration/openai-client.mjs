// The official openai npm client, unchanged but for its base URL and
// key, against an FLM proxy in front of the mock Ollama.  Run by
// openai.t: it writes one "ok - ..." or "not ok - ..." line per check
// (the shell numbers them) and "# ..." diagnostics.
//
// usage: FLM_NPM_DIR=DIR FLM_TEST_KEY=KEY node openai-client.mjs BASEURL
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { check, diag } from './tap.mjs';

const require = createRequire(join(process.env.FLM_NPM_DIR, 'package.json'));
const OpenAI = require('openai');

const baseURL = process.argv[2];
const MODEL = 'flm://ollama/llama3.2:1b';
const client = new OpenAI({ baseURL, apiKey: process.env.FLM_TEST_KEY });

let answer = null;

await check('openai: models.list() names flm://ollama/ models', async () => {
	const ids = [];

	for await (const m of client.models.list())
		ids.push(m.id);
	const want = ['flm://ollama/llama3.2:1b', 'flm://ollama/qwen2.5:0.5b'];
	return want.every((id) => ids.includes(id)) ||
	    `got ${JSON.stringify(ids)}`;
});

await check('openai: chat.completions.create answers', async () => {
	const r = await client.chat.completions.create({
		model: MODEL,
		messages: [{ role: 'user', content: 'Say hello' }],
	});

	answer = r.choices?.[0]?.message?.content ?? null;
	return (typeof answer === 'string' &&
	    answer.includes('Hello from mock')) ||
	    `got ${JSON.stringify(r)}`;
});

await check('openai: a stream joins to the same answer', async () => {
	const stream = await client.chat.completions.create({
		model: MODEL,
		messages: [{ role: 'user', content: 'Say hello' }],
		stream: true,
	});
	let text = '', n = 0;

	for await (const chunk of stream) {
		n++;
		text += chunk.choices?.[0]?.delta?.content ?? '';
	}
	return (answer !== null && n > 1 && text === answer) ||
	    `${n} chunks joined to ${JSON.stringify(text)}, ` +
	    `not ${JSON.stringify(answer)}`;
});

await check('openai: embeddings.create gives 8-dimensional vectors',
    async () => {
	// The client asks for encoding_format "base64" unless told
	// otherwise and decodes it: a server that ignores the request
	// and sends floats yields vectors of the wrong length here.
	const r = await client.embeddings.create({
		model: MODEL,
		input: ['first text', 'second text'],
	});
	const d = r.data ?? [];

	return (d.length === 2 && d.every((e) => e.embedding.length === 8 &&
	    e.embedding.every((x) => Number.isFinite(x)))) ||
	    'asked (by default) for encoding_format "base64", ' +
	    `got ${d.length} embeddings of lengths ` +
	    `${JSON.stringify(d.map((e) => e.embedding?.length))}: ` +
	    JSON.stringify(d.map((e) => e.embedding));
});

await check('openai: a wrong key throws AuthenticationError (401)',
    async () => {
	const bad = new OpenAI({ baseURL, apiKey: 'flm_0123456789abcdef_' +
	    'A'.repeat(43) });

	try {
		await bad.chat.completions.create({
			model: MODEL,
			messages: [{ role: 'user', content: 'hi' }],
		});
	} catch (e) {
		return (e instanceof OpenAI.AuthenticationError &&
		    e.status === 401) ||
		    `threw ${e?.constructor?.name} status ${e?.status}`;
	}
	return 'no error';
});
