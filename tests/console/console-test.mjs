// flm console in a real browser: headless Chromium, driven by
// puppeteer-core, logs in with the one-time URL and uses every page as
// an admin would.  Run by tests/integration/console.t: it writes one
// "ok - ..." or "not ok - ..." line per check (the shell numbers them),
// "# ..." diagnostics, and "@ NAME VALUE" lines where the shell has its
// part to play (a key to try with curl, requests to make); after some
// it waits for the shell to write SYNC/NAME, whose content it reads.
//
// usage: FLM_NPM_DIR=DIR CHROMIUM=PATH SYNC=DIR SHOTS=DIR EVIL=ORIGIN
//     EXPECT=ANSWER MODEL=NAME KEYD_PID=N PROXYD_PID=N
//     node console-test.mjs LOGIN_URL
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { check, diag } from '../integration/tap.mjs';

const require = createRequire(join(process.env.FLM_NPM_DIR, 'package.json'));
const puppeteer = require('puppeteer-core');

const LOGIN = process.argv[2];
const ORIGIN = new URL(LOGIN).origin;
const { SYNC, SHOTS, EVIL, EXPECT, MODEL } = process.env;
const T = 20000;	/* ms: the longest wait for one thing on a page */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "img-src 'self'; connect-src 'self'; form-action 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// at NAME VALUE [WAIT]: tell the shell; when WAIT, wait (60 s at most)
// for its SYNC/NAME and give its content.
async function at(name, value, wait = true) {
	console.log(`@ ${name} ${value}`);
	if (!wait)
		return null;
	const f = join(SYNC, name);
	for (let i = 0; i < 3000 && !existsSync(f); i++)
		await sleep(20);
	if (!existsSync(f))
		throw new Error(`the shell never wrote ${f}`);
	return readFileSync(f, 'utf8').trim();
}

const browser = await puppeteer.launch({
	executablePath: process.env.CHROMIUM,
	headless: true,		/* --headless=new */
	args: [
		...(process.getuid() === 0 ? ['--no-sandbox'] : []),
		'--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
		'--disable-extensions', '--disable-sync',
		'--disable-background-networking', '--disable-component-update',
	],
});
process.on('exit', () => browser.process()?.kill('SIGKILL'));

const page = await browser.newPage();
await page.setViewport({ width: 1280, height: 900 });
page.setDefaultTimeout(T);

// What the console's own pages must never do: load from elsewhere,
// break their CSP, throw.
const foreign = [], violations = [], errors = [];
page.on('request', (r) => {
	const u = r.url();
	if (!u.startsWith(`${ORIGIN}/`) && !u.startsWith('data:'))
		foreign.push(u);
});
page.on('console', (m) => {
	if (/Content.Security.Policy/i.test(m.text()))
		violations.push(m.text());
});
page.on('pageerror', (e) => errors.push(String(e?.message ?? e)));
// The requests not answered yet, for the diagnostics of a check that
// waited in vain.
const pending = new Map();
page.on('request', (r) => pending.set(r, Date.now()));
page.on('requestfinished', (r) => pending.delete(r));
page.on('requestfailed', (r) => pending.delete(r));
const unanswered = () => [...pending].map(([r, t]) =>
    `${r.method()} ${r.url()} for ${Date.now() - t} ms`).join('; ') || 'none';

// show SECTION: the page's section, as a click on its link would.
async function show(section) {
	await page.evaluate((h) => { location.hash = h; }, `#${section}`);
	await sleep(300);
}

async function shot(name) {
	await page.waitForNetworkIdle({ idleTime: 300, timeout: 3000 })
	    .catch(() => {});
	await page.screenshot({ path: join(SHOTS, `${name}.png`),
	    fullPage: true });
}

// The visible elements SELECTOR matches, the ones inside SCOPE first.
async function clickVisible(selector, scope) {
	const h = await page.waitForFunction((sel, sc) => {
		const vis = (e) => e.getClientRects().length > 0 &&
		    getComputedStyle(e).visibility !== 'hidden' && !e.disabled;
		const inScope = sc ? [...document.querySelectorAll(
		    `${sc} ${sel}`)].filter(vis) : [];
		const all = [...document.querySelectorAll(sel)].filter(vis);
		return inScope[0] ?? all[0] ?? null;
	}, {}, selector, scope ?? null);
	await h.asElement().click();
}

// The text of a field, or of any other element.
const value = (sel) => page.$eval(sel, (e) => (['INPUT', 'TEXTAREA']
    .includes(e.tagName) ? e.value : e.textContent).trim());

// createKey LABEL: through the keys page; the secret it shows, which
// must differ from the one it showed before.
async function createKey(label) {
	await show('keys');
	const before = await value('#key-secret').catch(() => '');
	await page.locator('#key-label').fill(label);
	await page.locator('#key-create').click();
	await page.waitForFunction((b) => {
		const e = document.querySelector('#key-secret');
		const v = e ? (['INPUT', 'TEXTAREA'].includes(e.tagName) ?
		    e.value : e.textContent).trim() : '';
		return v !== '' && v !== b;
	}, {}, before);
	return value('#key-secret');
}

const rowText = (label) => page.$eval(`tr[data-label="${label}"]`,
    (e) => e.textContent).catch(() => null);

// ---- login ------------------------------------------------------------------
let landed = null;
await check('the one-time URL answers 303 to /, and / is the console (200)',
    async () => {
	landed = await page.goto(LOGIN, { waitUntil: 'load' });
	const chain = landed.request().redirectChain();
	const first = chain[0]?.response();
	return (chain.length === 1 && first?.status() === 303 &&
	    first.headers().location !== undefined &&
	    landed.status() === 200 && page.url() === `${ORIGIN}/`) ||
	    `redirects ${chain.map((r) => r.response()?.status())}, ` +
	    `then ${landed.status()} at ${page.url()}`;
});

await check('the session cookie is HttpOnly, SameSite=Strict, Path=/, ' +
    '64 hex digits, out of reach of scripts', async () => {
	const c = (await page.cookies()).find((x) => x.name === 'flm_console');
	const js = await page.evaluate(() => document.cookie);
	return (c !== undefined && c.httpOnly === true &&
	    c.sameSite === 'Strict' && c.path === '/' &&
	    /^[0-9a-f]{64}$/.test(c.value) && !js.includes('flm_console')) ||
	    `cookie ${JSON.stringify(c)}, document.cookie "${js}"`;
});

await check('the console\'s page carries the CSP of docs/CONSOLE.md',
    async () => {
	const h = landed.headers();
	return (h['content-security-policy'] === CSP &&
	    h['x-frame-options'] === 'DENY' &&
	    h['x-content-type-options'] === 'nosniff') ||
	    `headers ${JSON.stringify(h)}`;
});

let session = {};
await check('GET /api/session from the page: a CSRF token of 64 hex digits',
    async () => {
	session = await page.evaluate(async () =>
	    (await fetch('/api/session')).json());
	return /^[0-9a-f]{64}$/.test(session.csrf) ||
	    `got ${JSON.stringify(session)}`;
});
const cookie = (await page.cookies()).find((x) => x.name === 'flm_console');
await at('session', `${cookie?.value ?? '-'} ${session.csrf ?? '-'}`, false);

await check('the one-time URL again, in a fresh incognito context: 403, ' +
    'no session', async () => {
	const ctx = await browser.createBrowserContext();
	try {
		const p = await ctx.newPage();
		const r = await p.goto(LOGIN);
		const text = await p.evaluate(() => document.body.innerText);
		const c = await p.cookies();
		const home = await p.goto(`${ORIGIN}/`);
		return (r.status() === 403 && /flm console/.test(text) &&
		    c.length === 0 && home.status() === 403) ||
		    `${r.status()}, cookies ${JSON.stringify(c)}, / ` +
		    `${home.status()}, page: ${text}`;
	} finally {
		await ctx.close();
	}
});

// ---- status -----------------------------------------------------------------
await show('status');
for (const [name, pid] of [['flm-keyd', process.env.KEYD_PID],
    ['flm-proxyd', process.env.PROXYD_PID]]) {
	await check(`status: ${name} (pid ${pid}) is running`, async () => {
		const ok = await page.waitForFunction((n, p) =>
		    [...document.querySelectorAll('#status-processes tr')]
		    .some((tr) => {
			const cells = [...tr.querySelectorAll('td,th')]
			    .map((c) => c.textContent.trim());
			// The pid as a number, grouped or not.
			return cells.some((c) => c.startsWith(n)) &&
			    cells.some((c) => c.replace(/[\s,.'\u00a0\u202f]/g,
			    '') === p) && cells.includes('running');
		}), { timeout: T }, name, pid).then(() => true, () => false);
		return ok || 'not in #status-processes: ' + await page.$eval(
		    '#status-processes', (e) => e.innerText).catch(String);
	});
}
await check('status: the sandbox of flm-keyd and flm-proxyd, from flm doctor',
    async () => {
	const ok = await page.waitForFunction(() => ['flm-keyd', 'flm-proxyd']
	    .every((n) => [...document.querySelectorAll('#status-processes tr')]
	    .some((tr) => tr.querySelector('td,th')?.textContent.trim()
	    .startsWith(n) && /sandboxed/.test(tr.textContent))),
	    { timeout: 10000 }).then(() => true, () => false);
	return ok || 'not in #status-processes: ' + await page.$eval(
	    '#status-processes', (e) => e.innerText).catch(String) +
	    '; #status-doctor: ' + await value('#status-doctor').catch(String);
});
await shot('status');

// ---- keys ---------------------------------------------------------------------
let key1 = '';
await check('keys: a key made on the page, its secret shown once, listed',
    async () => {
	key1 = await createKey('console-a');
	const row = await page.waitForSelector('tr[data-label="console-a"]')
	    .then(() => true, () => false);
	return (/^flm_[0-9a-f]{16}_\S+$/.test(key1) && row) ||
	    `secret "${key1}", row ${row}`;
});
await at('key1', key1 || '-');

// Revoke, then confirm: the shell checks the key works in between.
await check('keys: revoked after its confirmation', async () => {
	await clickVisible('.key-revoke', 'tr[data-label="console-a"]');
	await at('revoke-asked', 'console-a');
	await clickVisible('.key-revoke-confirm', 'tr[data-label="console-a"]');
	const gone = await page.waitForFunction(() => {
		const tr = document.querySelector('tr[data-label="console-a"]');
		return tr === null || /revoked/i.test(tr.textContent);
	}).then(() => true, () => false);
	return gone || `the row: ${await rowText('console-a')}`;
});
await at('revoked', 'console-a');
await shot('keys');

// ---- chat -------------------------------------------------------------------
let key2 = '';
await check('keys: a second key made on the page, another secret',
    async () => {
	key2 = await createKey('console-chat');
	return (/^flm_[0-9a-f]{16}_\S+$/.test(key2) && key2 !== key1) ||
	    `"${key2}" after "${key1}"`;
});

let seen = [], text = '';
await check(`chat: the mock's answer through ${MODEL}`, async () => {
	await show('chat');
	const opt = await page.waitForFunction((m) => {
		const s = document.querySelector('#chat-model');
		if (s === null)
			return null;
		if (s.tagName !== 'SELECT')
			return m;
		const o = [...s.options].find((x) =>
		    x.value.endsWith(m) || x.textContent.trim().endsWith(m));
		return o ? o.value : null;
	}, {}, MODEL).then((h) => h.jsonValue());
	if (await page.$eval('#chat-model', (e) => e.tagName) === 'SELECT')
		await page.select('#chat-model', opt);
	else
		await page.locator('#chat-model').fill(opt);
	await page.locator('#chat-key').fill(key2);
	await page.locator('#chat-message').fill('Say hello');
	await page.locator('#chat-send').click();
	// The output as it grows, until it holds the whole answer.
	const t0 = Date.now();
	while (Date.now() - t0 < T) {
		text = await value('#chat-output');
		if (seen[seen.length - 1] !== text)
			seen.push(text);
		if (text.includes(EXPECT))
			break;
		await sleep(15);
	}
	return text.includes(EXPECT) ||
	    `#chat-output says ${JSON.stringify(text)}, not ` +
	    JSON.stringify(EXPECT);
});
await check('chat: the answer came streamed, growing as the chunks came',
    async () => {
	// The output with part of the answer, not yet all of it.
	const partial = seen.filter((s) => s.includes('Hello') &&
	    !s.includes(EXPECT));
	return (text.includes(EXPECT) && partial.length >= 2) ||
	    `${partial.length} partial answers seen: ` + JSON.stringify(seen);
});
await shot('chat');

// ---- usage ------------------------------------------------------------------
const chartSum = () => page.evaluate(() =>
    [...document.querySelectorAll('#usage-requests-chart [data-count]')]
    .reduce((s, e) => s + Number(e.getAttribute('data-count')), 0));

await show('usage');
await page.waitForFunction(() => document.querySelector(
    '#usage-requests-chart [data-count]') !== null).catch(() => {});
const sum0 = await chartSum().catch(() => NaN);
const [usageId, n] = (await at('usage0', sum0)).split(' ');
const N = Number(n);
await page.reload({ waitUntil: 'load' });
await show('usage');
let sum1 = NaN;
await check(`usage: the chart counts the ${N} requests made since (` +
    `${sum0} before)`, async () => {
	const ok = await page.waitForFunction((want) =>
	    [...document.querySelectorAll('#usage-requests-chart [data-count]')]
	    .reduce((s, e) => s + Number(e.getAttribute('data-count')), 0) ===
	    want, { timeout: 10000 }, sum0 + N).then(() => true, () => false);
	sum1 = await chartSum();
	return (ok && !Number.isNaN(sum0)) || `the data-count sum is ${sum1}`;
});
await check(`usage: the totals count ${N} requests of key ${usageId}`,
    async () => {
	const ok = await page.waitForFunction((id, want) =>
	    [...document.querySelectorAll('#usage-totals tr')].some((tr) =>
	    (tr.textContent.includes(id) ||
	    tr.textContent.includes('console-usage')) &&
	    [...tr.querySelectorAll('td')].some((c) =>
	    c.textContent.trim() === want)), { timeout: 10000 }, usageId,
	    String(N)).then(() => true, () => false);
	return ok || '#usage-totals: ' + await page.$eval('#usage-totals',
	    (e) => e.innerText).catch(String);
});
await shot('usage');

// ---- audit ------------------------------------------------------------------
await check('audit: Verify says ok', async () => {
	await show('audit');
	await page.locator('#audit-verify').click();
	// Its result, not a "Verifying..." while it runs.
	const h = await page.waitForFunction(() => {
		const t = document.querySelector('#audit-verify-result')
		    ?.textContent.trim();
		return t && !/(\u2026|\.\.\.)$/.test(t) ? t : null;
	}).catch(() => null);
	const t = h ? await h.jsonValue() : await value('#audit-verify-result');
	const bad = /not intact|"ok": *false|fail|altered|missing|inserted/i;
	return (h !== null && /\bok\b/i.test(t) && !bad.test(t)) ||
	    `#audit-verify-result: ${t}; unanswered: ${unanswered()}`;
});
await shot('audit');

await show('setup');
await shot('setup');

// ---- CSRF from another origin -------------------------------------------------
// 127.0.0.1 on another port is the same site: Chromium sends the
// session cookie (SameSite is no help here); the CSRF token is.
const evil = await browser.newPage();
evil.setDefaultTimeout(T);
await check(`CSRF: ${EVIL}'s page cannot POST JSON with credentials to ` +
    '/api/keys/create', async () => {
	const q = new URLSearchParams({
		url: `${ORIGIN}/api/keys/create`, key: 'x', cred: '1',
		body: JSON.stringify({ label: 'csrf-fetch' }),
	});
	await evil.goto(`${EVIL}/__mock/page?${q}`);
	const h = await evil.waitForFunction(() => {
		const t = document.querySelector('#out')?.textContent;
		return t && t !== 'pending' ? t : null;
	});
	const r = JSON.parse(await h.jsonValue());
	return (r.error === 'TypeError' && r.status === undefined) ||
	    `the page read ${JSON.stringify(r)}`;
});
await check(`CSRF: ${EVIL}'s form POST to /api/keys/create is refused (403)`,
    async () => {
	// And a no-cors fetch first, whose answer no page may read: the
	// shell checks that neither made a key.
	await evil.evaluate(async (u) => {
		await fetch(u, { method: 'POST', mode: 'no-cors',
		    credentials: 'include', headers: { 'Content-Type':
		    'text/plain' }, body: '{"label":"csrf-nocors"}' })
		    .catch(() => {});
	}, `${ORIGIN}/api/keys/create`);
	const [r] = await Promise.all([
		evil.waitForNavigation(),
		evil.evaluate((u) => {
			const f = document.createElement('form');
			f.method = 'POST';
			f.action = u;
			f.enctype = 'text/plain';
			const i = document.createElement('input');
			i.name = '{"label":"csrf-form","x":"';
			i.value = '"}';
			f.appendChild(i);
			document.body.appendChild(f);
			f.submit();
		}, `${ORIGIN}/api/keys/create`),
	]);
	return r?.status() === 403 ||
	    `${r?.status()}: ${await r?.text().catch(String)}`;
});

await check('the console loaded nothing from elsewhere, broke no CSP rule, ' +
    'threw no error', async () =>
	(foreign.length + violations.length + errors.length === 0) ||
	JSON.stringify({ foreign, violations, errors }));

await browser.close();
