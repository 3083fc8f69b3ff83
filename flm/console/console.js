/* flm console: the front-end of `flm console` (docs/CONSOLE.md).
 * Vanilla ES2020, no library, no build step.  Written for a strict CSP:
 * no inline script or style, no eval, no innerHTML with data — every
 * node is made with createElement / createElementNS and textContent. */
'use strict';
(function () {

const PAGES = ['status', 'keys', 'usage', 'audit', 'chat', 'setup'];
const POLL_MS = 2000;
const SVGNS = 'http://www.w3.org/2000/svg';

const state = {
  csrf: null,
  session: null,       // the promise of GET /api/session
  page: null,
  pollGen: 0,          // bumped to stop a poll loop
  pollTimer: 0,
  lastPollError: '',
  engines: null,       // the last engines detect answer
  keys: [],
  createdKey: null,    // the secret last created or rotated, for Chat; never stored
  createdLabel: null,
  revokePending: null, // id of the key whose revoke awaits confirmation
  scopeKey: null,
  audit: [],
  modelsLoaded: false,
  chatAbort: null,
};

/* ---------- DOM helpers: everything goes through textContent ---------- */

const $ = (id) => document.getElementById(id);

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(node, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    node.append(kid instanceof Node ? kid : String(kid));
  }
  return node;
}

function el(tag, attrs, ...kids) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  return append(node, kids);
}

function svg(tag, attrs, ...kids) {
  const node = document.createElementNS(SVGNS, tag);
  setAttrs(node, attrs);
  return append(node, kids);
}

function fill(node, ...kids) {
  node.replaceChildren();
  return append(node, kids);
}

/* A table: headers are strings or [text, class]; cells are nodes, text,
 * or [content, class].  Wrapped so it scrolls sideways on a phone. */
function table(caption, headers, rows, attrs) {
  const head = el('tr', null, headers.map((h) => {
    const [text, cls] = Array.isArray(h) ? h : [h, null];
    return el('th', { scope: 'col', class: cls }, text);
  }));
  const body = rows.map((r) => r instanceof Node ? r : row(r));
  const t = el('table', attrs, el('caption', { class: 'sr-only' }, caption),
    el('thead', null, head), el('tbody', null, body));
  return el('div', { class: 'table-wrap' }, t);
}

function row(cells, attrs) {
  return el('tr', attrs, cells.map((c) => {
    const [content, cls] = Array.isArray(c) ? c : [c, null];
    return el('td', { class: cls }, content);
  }));
}

// Fill an existing <table> (it keeps its id and caption).
function fillTable(t, headers, rows) {
  const caption = t.querySelector('caption');
  const fresh = table('', headers, rows).firstChild;
  t.replaceChildren(...(caption ? [caption] : []), ...Array.from(fresh.children).slice(1));
}

const DASH = '—';
const pad = (n) => String(n).padStart(2, '0');
const ymd = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const show = (v) => (v === null || v === undefined || v === '') ? DASH : String(v);
const num = (v) => [typeof v === 'number' ? v.toLocaleString() : show(v), 'num'];

function fmtTime(iso) {
  if (!iso) return DASH;
  const d = typeof iso === 'number' ? new Date(iso * 1000) : new Date(iso);
  if (isNaN(d)) return String(iso);
  // Local time, compact and sortable; the exact UTC time in the tooltip.
  const text = `${ymd(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return el('time', { datetime: d.toISOString(), title: d.toISOString() }, text);
}

function fmtDuration(s) {
  if (typeof s !== 'number') return DASH;
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
  const m = Math.floor(s % 3600 / 60), sec = s % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  return m ? `${m}m ${sec}s` : `${sec}s`;
}

// The word carries the meaning; the colour class only helps.
const BADGE = {
  'st-ok': ['running', 'ok', 'active', 'closed', 'RunningHealthy', 'on', 'direct'],
  'st-warn': ['starting', 'restarting', 'draining', 'warn', 'expired',
    'half-open', 'RunningDegraded', 'InstalledOnly'],
  'st-fail': ['crash-loop', 'fail', 'revoked', 'refused', 'open', 'ErrorApi',
    'ErrorNetwork', 'OwnerChanged', 'altered', 'rollback'],
  'st-info': ['info'],
};
function badge(word) {
  if (word === null || word === undefined) return DASH;
  let cls = 'st-muted';
  for (const [c, words] of Object.entries(BADGE)) if (words.includes(word)) cls = c;
  return el('span', { class: 'badge ' + cls }, String(word));
}

function kv(pairs) {
  return el('dl', { class: 'kv' }, pairs.filter((p) => p).map(([k, v]) =>
    [el('dt', null, k), el('dd', null, v instanceof Node ? v : show(v))]));
}

const json = (v) => JSON.stringify(v, null, 2);
const list = (s) => s.split(',').map((x) => x.trim()).filter((x) => x);

/* ---------- messages (aria-live) ---------- */

function say(text, kind) {
  const m = $('message');
  const cls = 'message' + (kind ? ' ' + kind : '');
  // The same text again is not re-announced: polling repeats errors.
  if (m.textContent === text && m.className === cls) return;
  m.className = cls;
  m.textContent = text;
}

function fail(err, what) {
  const text = (what ? what + ': ' : '') + (err && err.message ? err.message : String(err));
  say('Error: ' + text, 'error');
  return text;
}

/* ---------- the API ---------- */

class ApiError extends Error {
  constructor(message, status, exit) {
    super(message);
    this.status = status;
    this.exit = exit;
  }
}

function errorText(resp, data, text) {
  if (resp.status === 401) return 'not logged in: restart flm console for a new link';
  if (data && typeof data.error === 'string' && data.error) return data.error;
  if (data && data.exit !== undefined) return `flm exited with status ${data.exit}`;
  if (data && data.error && data.error.message) return data.error.message;
  return `HTTP ${resp.status}` + (text ? ': ' + text.slice(0, 200) : '');
}

async function request(path, body, signal) {
  const init = { credentials: 'same-origin', headers: { Accept: 'application/json' }, signal };
  if (body !== undefined) {
    if (state.session) await state.session;  // the CSRF token first
    init.method = 'POST';
    init.headers['Content-Type'] = 'application/json';
    init.headers['X-FLM-CSRF'] = state.csrf || '';
    init.body = JSON.stringify(body);
  }
  return fetch(path, init);
}

/* GET (body undefined) or POST.  `accept` admits an error answer that
 * still carries the command's JSON (doctor, audit verify exit 1). */
async function api(path, body, accept) {
  const resp = await request(path, body);
  return readJson(resp, accept);
}

async function readJson(resp, accept) {
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = undefined; }
  if (resp.ok && data !== undefined) return data;
  if (data && accept && accept(data)) return data;
  if (resp.ok) throw new ApiError('the answer is not JSON', resp.status);
  throw new ApiError(errorText(resp, data, text), resp.status, data && data.exit);
}

async function loadSession() {
  try {
    const s = await api('/api/session');
    state.csrf = s.csrf;
    const where = s.statedir ? 'state directory ' + s.statedir : 'default state directory';
    $('session-info').textContent = `flm ${show(s.version)} · ${where}`;
  } catch (e) {
    $('session-info').textContent = 'No session';
    fail(e, 'session');
  }
}

/* ---------- navigation by fragment ---------- */

const ENTER = {};

function route(moveFocus) {
  let page = location.hash.slice(1);
  if (!PAGES.includes(page)) page = 'status';
  if (page === state.page) return;
  state.page = page;
  stopPolling();
  for (const p of PAGES) {
    $('page-' + p).hidden = p !== page;
    const a = $('nav-' + p);
    if (p === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = $('h-' + page).textContent + ' · FLM console';
  say('');  // a message belongs to the page it was said on
  if (moveFocus) $('main').focus();  // screen readers land on the new page
  ENTER[page]();
}

function stopPolling() {
  state.pollGen++;
  clearTimeout(state.pollTimer);
}

/* ---------- Status ---------- */

ENTER.status = () => {
  const gen = ++state.pollGen;
  pollStatus(gen);
  if (!state.engines) detectEngines($('status-engines'), true);
  else renderEngines($('status-engines'), state.engines);
};

const isDoctor = (d) => d && Array.isArray(d.checks);

// One poll, then the next one 2 s after it ends: polls never overlap.
async function pollStatus(gen) {
  const [st, doc, px] = await Promise.allSettled([
    api('/api/status'), api('/api/doctor', undefined, isDoctor), api('/api/proxies')]);
  if (gen !== state.pollGen) return;
  const value = (r) => r.status === 'fulfilled' ? r.value : null;
  renderStatus(value(st), value(doc), st.reason);
  renderProxies(value(px), px.reason);
  renderDoctor(value(doc), doc.reason);
  $('status-raw').textContent = json({ status: value(st), doctor: value(doc), proxies: value(px) });
  $('status-updated').textContent = 'Last: ' + new Date().toLocaleTimeString() + '.';
  const err = [st, doc, px].find((r) => r.status === 'rejected');
  if (err) {
    state.lastPollError = fail(err.reason, 'status');
  } else if (state.lastPollError) {
    state.lastPollError = '';
    say('Status is back.', 'ok');
  }
  if (document.hidden) {
    // A hidden tab polls again once it is seen.
    document.addEventListener('visibilitychange', () => {
      if (gen === state.pollGen) pollStatus(gen);
    }, { once: true });
    return;
  }
  state.pollTimer = setTimeout(() => pollStatus(gen), POLL_MS);
}

function renderStatus(st, doc, err) {
  const sum = $('status-summary');
  if (!st) {
    fill(sum, el('p', { class: 'st-fail' }, 'flmd: ' + (err ? err.message : 'no answer')));
    fillTable($('status-processes'), ['Process'], [[DASH]]);
    return;
  }
  const keyd = (st.processes || []).find((p) => p.database) || {};
  const db = keyd.database || {};
  const cfg = st.config_db || {};
  const safe = [];
  if (db.safe_mode) safe.push(`security.db in SAFE MODE (read-only): ${show(db.reason)}`);
  if (cfg.safe_mode) safe.push(`config.db in SAFE MODE (read-only): ${show(cfg.reason)}`);
  const integ = db.integrity || {};
  fill(sum,
    safe.map((s) => el('p', { class: 'warn' }, s)),
    kv([
      ['Mode', st.mode], ['State directory', st.state_dir], ['Socket', st.socket],
      ['Protocol', st.protocol],
      ['Safe mode', safe.length ? el('strong', { class: 'st-fail' }, 'YES') : 'no'],
      ['config.db', `schema ${show(cfg.version)}`],
      db.db && [db.db, `schema ${show(db.version)}`],
      db.integrity && ['Integrity', `bad keys ${show(integ.bad_keys)}, policy ${show(integ.policy)}, ` +
        `audit anchor ${show(integ.audit_anchor)}` + (integ.audit_problem ? ': ' + integ.audit_problem : '')],
    ]));
  const sandbox = sandboxes(doc);
  fillTable($('status-processes'),
    ['Process', ['PID', 'num'], 'State', 'Uptime', ['Restarts', 'num'], 'Version',
      ['Requests', 'num'], 'Last exit', 'Sandbox'],
    (st.processes || []).map((p) => [
      p.worker !== undefined ? `${p.name}[${p.worker}]` : show(p.name),
      [show(p.pid), 'num'], badge(p.state), fmtDuration(p.uptime_s), num(p.restarts),
      show(p.version), num(p.requests), show(p.last_exit), sandbox(p),
    ]));
}

/* The sandbox of each process is in doctor's "processes" checks:
 * "running, pid N, sandboxed (seccomp)". */
function sandboxes(doc) {
  const checks = isDoctor(doc) ? doc.checks.filter((c) => c.group === 'processes') : [];
  return (p) => {
    const c = checks.find((x) => x.name === p.name && p.pid && String(x.detail).includes(`pid ${p.pid},`)) ||
      checks.find((x) => x.name === p.name);
    if (!c) return DASH;
    const m = /sandbox[^,;]*/i.exec(c.detail || '');
    return el('span', { class: c.status === 'ok' ? 'st-ok' : 'st-' + c.status }, m ? m[0] : show(c.detail));
  };
}

function renderProxies(px, err) {
  const box = $('status-proxies');
  if (!Array.isArray(px)) {
    fill(box, el('p', { class: 'st-fail' }, err ? err.message : 'no answer'));
    return;
  }
  if (!px.length) {
    fill(box, el('p', { class: 'empty' }, 'No proxy is running. Start one on the Setup page.'));
  } else {
    fill(box, table('Proxies',
      ['Address', 'Mode', ['Port', 'num'], 'Bind', 'Key checks', 'Client certs', ['Requests', 'num'],
        'Started', 'Certificate'],
      px.map((p) => [show(p.id), badge(p.mode), [show(p.port), 'num'], show(p.bind),
        badge(p.key_checks || (p.auth === false ? 'OFF' : 'on')), show(p.client_certs),
        num(p.requests), fmtTime(p.started_at), certificate(p)]), { id: 'status-proxies-table' }));
  }
  renderEgress(px.length ? px[0].egress : undefined);
}

function certificate(p) {
  const c = p.certificate;
  if (!c) return p.state ? el('span', { class: 'st-warn' }, p.state) : (p.mode === 'local-http' ? 'none (plain HTTP)' : DASH);
  const acme = p.acme || {};
  return el('div', null,
    el('div', null, `${show(c.subject)}, by ${show(c.issuer)}`),
    el('div', null, 'valid until ', fmtTime(c.not_after), ', renews ', fmtTime(c.renew_at)),
    el('div', null, 'names: ' + (c.sans || []).join(', ')),
    el('div', { class: 'mono' }, 'SHA-256 ' + show(c.sha256)),
    acme.last_error && el('div', { class: 'st-warn' },
      `last order failed (${show(acme.failures)} in a row): ${acme.last_error}; next try `, fmtTime(acme.next_try)));
}

function renderEgress(eg) {
  const box = $('status-egress');
  if (eg === undefined) return fill(box, el('p', { class: 'empty' }, 'Shown once a proxy runs.'));
  if (typeof eg !== 'object' || !eg) return fill(box, el('p', null, badge(show(eg)), ' — engines are reached directly.'));
  fill(box, kv([
    ['Mode', eg.mode],
    eg.addr !== undefined && ['Server', `${show(eg.addr)} port ${show(eg.port)}`],
    eg.user && ['User', eg.user],
    ['Healthy', eg.healthy === undefined ? 'not checked yet' : badge(eg.healthy ? 'ok' : 'fail')],
    eg.last_error && ['Last error', eg.last_error],
    eg.error && ['Error', eg.error],
    eg.checked_at && ['Checked', fmtTime(eg.checked_at)],
    eg.fail_open && ['Fail open', 'yes: engines are reached directly when the server fails'],
  ]));
}

function renderDoctor(doc, err) {
  const box = $('status-doctor');
  if (!isDoctor(doc)) return fill(box, el('p', { class: 'st-fail' }, err ? err.message : 'no answer'));
  const bad = doc.checks.filter((c) => c.status === 'warn' || c.status === 'fail').length;
  // What needs attention first; sort is stable, so groups keep their order.
  const rank = (c) => ({ fail: 0, warn: 1 })[c.status] ?? 2;
  const checks = doc.checks.slice().sort((a, c) => rank(a) - rank(c));
  fill(box,
    el('p', null, bad ? `${bad} check${bad > 1 ? 's need' : ' needs'} attention.` : 'Nothing needs attention.'),
    table('Doctor checks', ['Group', 'Check', 'Status', 'Finding', 'Fix'],
      checks.map((c) => [show(c.group), show(c.name), badge(c.status), show(c.detail),
        c.fix ? el('code', null, c.fix) : DASH]), { id: 'status-doctor-table' }));
}

/* ---------- Engines (Status and Setup) ---------- */

async function detectEngines(box, quiet) {
  fill(box, el('p', { class: 'hint' }, 'Probing the engines…'));
  try {
    state.engines = await api('/api/engines/detect', {});
    renderEngines($('status-engines'), state.engines);
    renderEngines($('setup-engines'), state.engines);
    if (!quiet) say(`Engines probed: ${state.engines.filter(running).length} running.`, 'ok');
  } catch (e) {
    fill(box, el('p', { class: 'st-fail' }, fail(e, 'engines detect')));
  }
}

const running = (e) => e.state === 'RunningHealthy' || e.state === 'RunningDegraded';

function renderEngines(box, engines) {
  if (!Array.isArray(engines)) return fill(box, el('pre', { class: 'raw' }, json(engines)));
  fill(box, table('Engines',
    ['Engine', 'Kind', 'URL', 'State', 'Reason', 'Version', ['Models', 'num'], ['Latency ms', 'num'], 'Breaker'],
    engines.map((e) => [show(e.id), show(e.kind), show(e.base_url), badge(e.state),
      show(e.reason) + (e.refused ? ` (requests refused: ${e.refused})` : ''),
      show(e.version), num(e.model_count), num(e.latency_ms),
      e.breaker ? badge(e.breaker.state) : DASH])));
}

$('status-detect').addEventListener('click', () => detectEngines($('status-engines')));

/* ---------- Keys ---------- */

ENTER.keys = () => loadKeys();

async function loadKeys() {
  try {
    const keys = await api('/api/keys');
    state.keys = Array.isArray(keys) ? keys : [];
    renderKeys();
    return true;
  } catch (e) {
    fail(e, 'keys');
    return false;
  }
}

function scopeText(scope) {
  if (!scope || typeof scope !== 'object') return 'none';
  return Object.entries(scope).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`).join('; ') || 'none';
}

function keyState(k) {
  const s = badge(k.state || (k.revoked_at ? 'revoked' : 'active'));
  if (!k.previous_secret_until) return s;
  return el('span', null, s, ' old secret until ', fmtTime(k.previous_secret_until));
}

function renderKeys() {
  const t = $('keys-table');
  // Actions early, so a phone shows them without scrolling sideways.
  const headers = ['Label', 'State', 'Actions', 'ID', 'Created', 'Expires', 'Last used', 'Scope', 'Legacy', 'Revoked'];
  const rows = state.keys.map((k) => row([
    show(k.label), keyState(k), [keyActions(k), 'key-actions'], [show(k.id), 'mono'],
    fmtTime(k.created_at), fmtTime(k.expires_at), fmtTime(k.last_used_at), scopeText(k.scope),
    show(k.legacy), fmtTime(k.revoked_at),
  ], { 'data-label': k.label, 'data-id': k.id, class: k.state }));
  if (!rows.length) rows.push(row([[el('span', { class: 'empty' }, 'No key yet: create one above.')]]));
  fillTable(t, headers, rows);
  $('keys-raw').textContent = json(state.keys);
}

function keyActions(k) {
  if (k.state === 'revoked' || k.revoked_at) return DASH;
  const name = k.label || k.id;
  if (state.revokePending === k.id) {
    return [
      button(`Confirm revoke ${name}`, 'key-revoke-confirm', () => revokeKey(k)),
      button('Cancel', 'key-revoke-cancel secondary', () => { state.revokePending = null; renderKeys(); }),
    ];
  }
  return [
    button('Rotate', 'key-rotate', () => rotateKey(k), `Rotate ${name}`),
    button('Scope', 'key-scope', () => openScope(k), `Scope of ${name}`),
    button('Revoke', 'key-revoke', () => askRevoke(k), `Revoke ${name}`),
  ];
}

function button(text, cls, onClick, label) {
  const b = el('button', { type: 'button', class: cls, 'aria-label': label }, text);
  b.addEventListener('click', onClick);
  return b;
}

const keyRow = (k) => document.querySelector(`#keys-table tr[data-id="${CSS.escape(k.id)}"]`);

function askRevoke(k) {
  state.revokePending = k.id;
  renderKeys();
  const b = keyRow(k) && keyRow(k).querySelector('.key-revoke-confirm');
  if (b) b.focus();
  say(`Revoking ${k.label} is for good: confirm, or cancel.`);
}

async function revokeKey(k) {
  state.revokePending = null;
  try {
    const r = await api('/api/keys/revoke', { key: k.id });
    say(`Key ${show(r.label || k.label)} revoked.`, 'ok');
  } catch (e) {
    fail(e, 'revoke ' + k.label);
  }
  await loadKeys();
}

async function rotateKey(k) {
  const body = { key: k.id };
  const grace = $('key-grace').value.trim();
  if (grace) body.grace = grace;
  try {
    const r = await api('/api/keys/rotate', body);
    showSecret('key', r, `New secret for ${show(r.label || k.label)}` +
      (r.previous_secret_until ? ' (the old one works until ' + new Date(r.previous_secret_until).toLocaleString() + ')' : ''));
    say(`Key ${show(r.label || k.label)} rotated. Copy the new secret now: it will not be shown again.`, 'ok');
  } catch (e) {
    fail(e, 'rotate ' + k.label);
  }
  await loadKeys();
}

function openScope(k) {
  state.scopeKey = k;
  const s = k.scope || {};
  $('key-scope-title').textContent = `Scope of ${k.label}`;
  $('key-scope-models').value = (s.models || []).join(', ');
  $('key-scope-engines').value = (s.engines || []).join(', ');
  // The route sets models and engines only; the rest of a scope would go.
  const other = Object.keys(s).filter((f) => f !== 'models' && f !== 'engines');
  const warn = $('key-scope-warn');
  warn.hidden = !other.length;
  warn.textContent = other.length ? `Saving replaces the whole scope: this key's ${other.join(', ')} ` +
    `would be dropped. To keep them use flm api-keys scope ${k.label} from a shell.` : '';
  $('key-scope-form').hidden = false;
  $('key-scope-models').focus();
}

function closeScope() {
  $('key-scope-form').hidden = true;
  state.scopeKey = null;
}

$('key-scope-cancel').addEventListener('click', closeScope);
$('key-scope-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const k = state.scopeKey;
  if (!k) return;
  const body = { key: k.id };
  const models = list($('key-scope-models').value), engines = list($('key-scope-engines').value);
  if (models.length) body.models = models;
  if (engines.length) body.engines = engines;
  try {
    const r = await api('/api/keys/scope', body);
    say(`Scope of ${k.label}: ${scopeText(r.scope)}${r.scope ? '' : ' (no limits of its own)'}.`, 'ok');
    closeScope();
  } catch (e) {
    fail(e, 'scope ' + k.label);
  }
  await loadKeys();
});

/* Create a key; used by the Keys page and step 3 of Setup. */
async function createKey(label, expires, models, engines) {
  const body = { label };
  if (expires) body.expires = expires;
  if (models && models.length) body.models = models;
  if (engines && engines.length) body.engines = engines;
  const r = await api('/api/keys/create', body);
  say(`Key ${show(r.label)} created. Copy its secret now: it will not be shown again.`, 'ok');
  return r;
}

/* Show a secret once, in a read-only field, and remember it (in memory
 * only) for the Chat page.  prefix: 'key' (Keys) or 'setup-key' (Setup). */
function showSecret(prefix, r, title) {
  const box = prefix === 'key' ? $('key-secret-box') : $('setup-secret-box');
  const input = $(prefix + '-secret');
  if (prefix === 'key') $('key-secret-title').textContent = title;
  input.value = r.key || '';
  box.hidden = false;
  input.focus();
  input.select();
  state.createdKey = r.key || null;
  state.createdLabel = r.label || null;
  updateUseCreated();
}

async function copySecret(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    say('Copied to the clipboard.', 'ok');
  } catch (e) {
    // No clipboard API (or no permission): select it for Ctrl+C.
    input.focus();
    input.select();
    say('Selected: press Ctrl+C (or ⌘C) to copy.');
  }
}

$('key-copy').addEventListener('click', () => copySecret($('key-secret')));
$('setup-key-copy').addEventListener('click', () => copySecret($('setup-key-secret')));

$('key-create-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const b = $('key-create');
  b.disabled = true;
  try {
    const r = await createKey($('key-label').value.trim(), $('key-expires').value.trim(),
      list($('key-models').value), list($('key-engines').value));
    ev.target.reset();
    showSecret('key', r, `New key ${show(r.label)}`);
  } catch (e) {
    fail(e, 'create key');
  } finally {
    b.disabled = false;
  }
  await loadKeys();
});

$('keys-refresh').addEventListener('click', () => loadKeys().then((ok) => ok && say('Keys refreshed.')));

/* ---------- Usage ---------- */

ENTER.usage = () => loadUsage();

const MINUTE = 60e3, HOUR = 3600e3, DAY = 86400e3;

/* GET /api/audit?count=N: the newest N records, 1 to 500 (flm audit
 * tail's bounds). */
async function fetchAudit(n) {
  return { rows: auditRows(await api('/api/audit?count=' + n)), n };
}

const auditRows = (d) => Array.isArray(d) ? d : (d && Array.isArray(d.records) ? d.records : []);

async function loadUsage() {
  const b = $('usage-refresh');
  b.disabled = true;
  try {
    const [audit, usage, keys] = await Promise.all([fetchAudit(500), api('/api/usage'),
      api('/api/keys').catch(() => null)]);  // only for the labels
    if (Array.isArray(keys)) state.keys = keys;
    const labels = new Map(state.keys.map((k) => [k.id, k.label]));
    const keyName = (id) => id ? labels.get(id) || id : '(no key)';
    renderUsageCharts(audit.rows, audit.n, keyName);
    renderTotals(usage, keyName);
    return true;
  } catch (e) {
    fail(e, 'usage');
    return false;
  } finally {
    b.disabled = false;
  }
}

$('usage-refresh').addEventListener('click', () => loadUsage().then((ok) => ok && say('Usage refreshed.')));

function renderUsageCharts(rows, n, keyOf) {
  const timed = rows.map((r) => ({ r, t: Date.parse(r.created_at) })).filter((x) => !isNaN(x.t));
  $('usage-span').textContent = `From the last ${timed.length} audit records (at most ${n}).`;
  if (!timed.length) {
    const none = () => el('p', { class: 'empty' }, 'No request in the audit trail yet.');
    const b = { n: 0, step: MINUTE, start: Date.now() };
    fill($('usage-requests'), none(), chartBlock('requests', [], b, 'Requests', 'usage-requests-chart'));
    fill($('usage-tokens'), none());
    fill($('usage-latency'), none());
    return;
  }
  const b = buckets(timed.map((x) => x.t));
  const keyName = (r) => keyOf(r.key_id);
  const modelName = (r) => r.model || '(no model)';
  const req = series(timed, b, keyName, () => 1);
  const tok = series(timed, b, modelName, (r) => (r.prompt_tokens || 0) + (r.completion_tokens || 0));
  fill($('usage-requests'), chartBlock('requests', req, b, 'Requests', 'usage-requests-chart'));
  fill($('usage-tokens'), chartBlock('tokens', tok, b, 'Tokens (prompt + completion)', 'usage-tokens-chart'));
  renderLatency(timed.map((x) => x.r));
}

/* Buckets of a minute under 2 hours of span, of an hour under 10 days,
 * else of a day: never more than about 240 bars. */
function buckets(times) {
  let min = Infinity, max = -Infinity;
  for (const t of times) { if (t < min) min = t; if (t > max) max = t; }
  const span = max - min;
  const step = span < 2 * HOUR ? MINUTE : span < 10 * DAY ? HOUR : DAY;
  const start = Math.floor(min / step) * step;
  return { start, step, n: Math.floor((max - start) / step) + 1 };
}

// series: [{name, values: [per bucket]}], by descending total.
function series(timed, b, nameOf, valueOf) {
  const map = new Map();
  for (const { r, t } of timed) {
    const name = nameOf(r);
    if (!map.has(name)) map.set(name, new Array(b.n).fill(0));
    map.get(name)[Math.floor((t - b.start) / b.step)] += valueOf(r);
  }
  return Array.from(map, ([name, values]) => ({ name, values, total: values.reduce((a, v) => a + v, 0) }))
    .sort((x, y) => y.total - x.total);
}

function bucketLabel(b, i, long) {
  const d = new Date(b.start + i * b.step);
  const day = ymd(d);
  if (b.step === DAY) return day;
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return long || b.n * b.step > DAY ? `${long ? day : day.slice(5)} ${hm}` : hm;
}
const stepName = (b) => b.step === MINUTE ? 'minute' : b.step === HOUR ? 'hour' : 'day';

// A chart, its legend, and its table alternative.
function chartBlock(kind, ser, b, yTitle, id) {
  const chart = kind === 'requests' ? requestsSvg(b, ser, yTitle) : tokensSvg(b, ser, yTitle);
  setAttrs(chart, { id });
  const totals = b.n ? new Array(b.n).fill(0).map((_, i) => ser.reduce((a, s) => a + s.values[i], 0)) : [];
  const rows = [];
  for (let i = 0; i < b.n; i++) {
    if (!totals[i]) continue;  // the table lists the buckets with something in them
    rows.push([bucketLabel(b, i, true), ...ser.map((s) => num(s.values[i])), num(totals[i])]);
  }
  const caption = `${yTitle} per ${stepName(b)}`;
  return el('div', { class: 'chart' }, chart, legend(ser),
    table(caption, [`Time (per ${stepName(b)})`, ...ser.map((s) => [s.name, 'num']), ['Total', 'num']], rows,
      { id: id.replace('-chart', '-table') }));
}

function legend(ser) {
  return el('ul', { class: 'legend' }, ser.map((s, i) => el('li', null,
    svg('svg', { width: 12, height: 12, 'aria-hidden': 'true', focusable: 'false' },
      svg('rect', { width: 12, height: 12, class: color(i) })),
    `${s.name} (${s.total.toLocaleString()})`)));
}

const color = (i) => 's' + (i % 8);
const G = { w: 640, h: 260, left: 52, right: 12, top: 12, bottom: 46 };

/* The frame of a chart: the svg, its title, y grid and labels, x labels. */
function frame(b, max, yTitle, label) {
  const root = svg('svg', { viewBox: `0 0 ${G.w} ${G.h}`, role: 'img', 'aria-label': label },
    svg('title', null, label));
  const ph = G.h - G.top - G.bottom, pw = G.w - G.left - G.right;
  const top = niceMax(max);
  const y = (v) => G.top + ph - (top ? v / top * ph : 0);
  for (let k = 0; k <= 4; k++) {
    const v = top * k / 4;
    root.append(svg('line', { class: k ? 'grid' : 'axis', x1: G.left, x2: G.w - G.right, y1: y(v), y2: y(v) }),
      svg('text', { x: G.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, Number.isInteger(v) ? v : v.toFixed(1)));
  }
  const bw = b.n ? pw / b.n : pw;
  const every = Math.max(1, Math.ceil(b.n / 8));
  for (let i = 0; i < b.n; i += every) {
    root.append(svg('text', { x: G.left + (i + 0.5) * bw, y: G.h - G.bottom + 16, 'text-anchor': 'middle' },
      bucketLabel(b, i)));
  }
  root.append(
    svg('text', { x: G.left + pw / 2, y: G.h - 6, 'text-anchor': 'middle' }, `Time (per ${stepName(b)})`),
    svg('text', { x: 12, y: G.top + ph / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${G.top + ph / 2})` }, yTitle));
  return { root, y, bw, x: (i) => G.left + i * bw };
}

function niceMax(v) {
  if (v <= 4) return 4;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/* Requests: bars stacked by key.  Each bucket has one transparent
 * rect.bucket over its stack with data-count, its request count, so the
 * counts drawn can be summed; the coloured segments have none. */
function requestsSvg(b, ser, yTitle) {
  let max = 0;
  const totals = [];
  for (let i = 0; i < b.n; i++) {
    totals.push(ser.reduce((a, s) => a + s.values[i], 0));
    max = Math.max(max, totals[i]);
  }
  const sum = totals.reduce((a, v) => a + v, 0);
  const f = frame(b, max, yTitle || 'Requests',
    `Requests over time per key: ${sum} requests in ${b.n} buckets of a ${stepName(b)}`);
  const gap = Math.min(2, f.bw * 0.15);
  for (let i = 0; i < b.n; i++) {
    const g = svg('g', null);
    let acc = 0;
    ser.forEach((s, k) => {
      const v = s.values[i];
      if (!v) return;
      g.append(svg('rect', { class: color(k), x: f.x(i) + gap / 2, width: Math.max(f.bw - gap, 0.5),
        y: f.y(acc + v), height: f.y(acc) - f.y(acc + v) }));
      acc += v;
    });
    const detail = ser.filter((s) => s.values[i]).map((s) => `${s.name} ${s.values[i]}`).join(', ');
    g.append(svg('rect', { class: 'bucket', x: f.x(i), width: f.bw, y: f.y(totals[i]),
      height: f.y(0) - f.y(totals[i]), 'data-count': totals[i],
      'data-time': new Date(b.start + i * b.step).toISOString() },
    svg('title', null, `${bucketLabel(b, i, true)}: ${totals[i]} requests` + (detail ? ` (${detail})` : ''))));
    f.root.append(g);
  }
  return f.root;
}

/* Tokens: one line per model, a point per bucket with data-tokens. */
function tokensSvg(b, ser, yTitle) {
  const max = Math.max(0, ...ser.map((s) => Math.max(...s.values)));
  const f = frame(b, max, yTitle, `Tokens over time per model, ${ser.length} models`);
  ser.forEach((s, k) => {
    const pts = s.values.map((v, i) => `${(f.x(i) + f.bw / 2).toFixed(1)},${f.y(v).toFixed(1)}`);
    f.root.append(svg('polyline', { class: color(k), points: pts.join(' ') }));
    s.values.forEach((v, i) => {
      if (!v) return;
      f.root.append(svg('circle', { class: color(k), cx: f.x(i) + f.bw / 2, cy: f.y(v), r: 3, 'data-tokens': v },
        svg('title', null, `${s.name}, ${bucketLabel(b, i, true)}: ${v} tokens`)));
    });
  });
  return f.root;
}

/* Latency: p50/p90/p99 (nearest rank) of every request, and per model. */
function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.max(0, Math.ceil(p / 100 * sorted.length) - 1)];
}

function renderLatency(rows) {
  const groups = new Map([['all models', []]]);
  for (const r of rows) {
    if (typeof r.latency_ms !== 'number') continue;
    groups.get('all models').push(r.latency_ms);
    const m = r.model || '(no model)';
    if (!groups.has(m)) groups.set(m, []);
    groups.get(m).push(r.latency_ms);
  }
  const stats = Array.from(groups, ([name, v]) => {
    v.sort((a, c) => a - c);
    return { name, n: v.length, p: [50, 90, 99].map((p) => percentile(v, p)) };
  });
  fill($('usage-latency'), el('div', { class: 'chart' }, latencySvg(stats[0]),
    table('Latency percentiles in milliseconds', ['Model', ['Requests', 'num'], ['p50 ms', 'num'],
      ['p90 ms', 'num'], ['p99 ms', 'num']],
    stats.map((s) => [s.name, num(s.n), ...s.p.map(num)]), { id: 'usage-latency-table' })));
}

function latencySvg(s) {
  const w = 480, h = 120, left = 48, barH = 24;
  const max = niceMax(Math.max(1, ...s.p.map((v) => v || 0)));
  const label = `Latency of all models: p50 ${show(s.p[0])} ms, p90 ${show(s.p[1])} ms, p99 ${show(s.p[2])} ms`;
  const root = svg('svg', { id: 'usage-latency-chart', viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': label },
    svg('title', null, label));
  ['p50', 'p90', 'p99'].forEach((name, i) => {
    const v = s.p[i] || 0, y = 8 + i * (barH + 10);
    const bw = v / max * (w - left - 90);
    root.append(svg('text', { x: left - 8, y: y + barH / 2 + 4, 'text-anchor': 'end' }, name),
      svg('rect', { class: color(i), x: left, y, width: Math.max(bw, 1), height: barH, 'data-ms': v }),
      svg('text', { x: left + bw + 6, y: y + barH / 2 + 4 }, `${show(s.p[i])} ms`));
  });
  return root;
}

function renderTotals(usage, keyName) {
  const rows = (usage && Array.isArray(usage.usage)) ? usage.usage : (Array.isArray(usage) ? usage : []);
  $('usage-since').textContent = usage && usage.since ? 'Since ' + usage.since + '.' : 'The whole live audit trail (archived records are not counted).';
  const sum = (f) => rows.reduce((a, r) => a + (r[f] || 0), 0);
  const body = rows.map((r) => row([
    keyName(r.key_id), [show(r.key_id), 'mono'], show(r.model || '(no model)'),
    num(r.requests), num(r.prompt_tokens), num(r.completion_tokens),
  ], { 'data-key': r.key_id || '', 'data-model': r.model || '' }));
  body.push(row([el('strong', null, 'Total'), '', '', num(sum('requests')), num(sum('prompt_tokens')),
    num(sum('completion_tokens'))], { class: 'total' }));
  fillTable($('usage-totals'), ['Key', 'Key id', 'Model', ['Requests', 'num'], ['Prompt tokens', 'num'],
    ['Completion tokens', 'num']], body);
}

/* ---------- Audit ---------- */

ENTER.audit = () => loadAudit();

async function loadAudit() {
  const want = Number($('audit-count').value);
  try {
    const a = await fetchAudit(want);
    state.audit = a.rows;
    if (a.n !== want) say(`flm audit tail gives at most ${a.n} records: asked for ${a.n}.`);
    renderAudit();
    return true;
  } catch (e) {
    fail(e, 'audit');
    return false;
  }
}

const FILTERS = ['key', 'model', 'status', 'text'];

/* A status filter: "200", "4xx" or "4" (a prefix), several with commas. */
function statusMatch(filter, status) {
  const s = String(status === null || status === undefined ? '' : status);
  return list(filter).some((f) => {
    if (!/^[0-9x]+$/i.test(f)) return s.includes(f);
    return new RegExp('^' + f.replace(/x/gi, '[0-9]')).test(s);
  });
}

function renderAudit() {
  const f = {};
  for (const k of FILTERS) f[k] = $('audit-filter-' + k).value.trim().toLowerCase();
  const has = (v, q) => !q || String(v === null || v === undefined ? '' : v).toLowerCase().includes(q);
  const shown = state.audit.filter((r) =>
    has(r.key_id, f.key) && has(r.model, f.model) && (!f.status || statusMatch(f.status, r.status)) &&
    (!f.text || JSON.stringify(Object.values(r)).toLowerCase().includes(f.text))).reverse();
  $('audit-shown').textContent = `Showing ${shown.length} of ${state.audit.length} records, newest first.`;
  const ok = (s) => s >= 200 && s < 300 ? 'st-ok' : s >= 400 ? 'st-fail' : 'st-warn';
  fillTable($('audit-table'),
    ['Time', ['ID', 'num'], 'Request id', 'Key id', 'Client', 'Endpoint', 'Model', 'Status',
      ['Latency ms', 'num'], ['Prompt', 'num'], ['Completion', 'num'], 'Scope', 'Client cert'],
    shown.map((r) => row([
      fmtTime(r.created_at), num(r.id), [show(r.request_id), 'mono'], [show(r.key_id), 'mono'],
      show(r.client_addr), show(r.endpoint), show(r.model),
      el('span', { class: ok(r.status) }, show(r.status)), num(r.latency_ms),
      num(r.prompt_tokens), num(r.completion_tokens), show(r.scope),
      r.cert_label || r.cert_serial ? `${show(r.cert_label)} (${show(r.cert_serial)})` : DASH,
    ], { 'data-id': r.id })));
}

for (const k of FILTERS) $('audit-filter-' + k).addEventListener('input', renderAudit);
$('audit-count').addEventListener('change', loadAudit);
$('audit-refresh').addEventListener('click', () => loadAudit().then((ok) => ok && say('Audit trail refreshed.')));

$('audit-verify').addEventListener('click', async () => {
  const b = $('audit-verify'), out = $('audit-verify-result');
  b.disabled = true;
  out.className = 'result';
  out.textContent = 'Verifying…';
  try {
    const v = await api('/api/audit/verify', {}, (d) => typeof d.ok === 'boolean');
    renderVerify(v);
    say(v.ok ? 'Audit trail intact.' : 'Audit trail NOT intact.', v.ok ? 'ok' : 'error');
  } catch (e) {
    out.className = 'result bad';
    out.textContent = 'Could not verify: ' + fail(e, 'audit verify');
  } finally {
    b.disabled = false;
  }
});

function renderVerify(v) {
  const out = $('audit-verify-result');
  out.className = 'result ' + (v.ok ? 'ok' : 'bad');
  const p = v.problem || {};
  const head = v.ok
    ? `Audit trail intact: ${show(v.rows)} rows (ids ${show(v.first_id)}–${show(v.last_id)})` +
      (v.archived_through ? `, archived through ${v.archived_through}` : '') + '.'
    : `Audit trail NOT intact: ${show(p.kind)} at record ${show(p.id)}: ${show(p.message)}`;
  const g = v.genesis, a = v.anchor;
  fill(out, el('strong', { class: v.ok ? 'st-ok' : 'st-fail' }, head),
    g && el('div', null, `Genesis: row ${show(g.id)} of `, fmtTime(g.created_at), ` (${show(g.in)}).`),
    a && el('div', null, `Anchor: ${show(a.state)}, last id ${show(a.last_id)}, since `, fmtTime(a.since), '.'),
    v.warning && el('div', { class: 'warn' }, 'Warning: ' + (typeof v.warning === 'string' ? v.warning : json(v.warning))),
    el('details', null, el('summary', null, 'Raw JSON'), el('pre', { class: 'raw' }, json(v))));
}

/* ---------- Chat ---------- */

ENTER.chat = () => {
  updateUseCreated();
  if (!state.modelsLoaded) loadModels();
};

async function loadModels() {
  const sel = $('chat-model');
  const keep = sel.value;
  try {
    const models = await api('/api/models');
    const opts = (Array.isArray(models) ? models : []).map((m) => {
      const bad = m.engine_state && !['RunningHealthy', 'RunningDegraded'].includes(m.engine_state);
      return el('option', { value: m.id }, show(m.id) + (bad ? ` (${m.engine_state})` : ''));
    });
    fill(sel, el('option', { value: '' }, "(the proxy's first model)"), opts);
    if (Array.from(sel.options).some((o) => o.value === keep)) sel.value = keep;
    else if (opts.length) sel.value = opts[0].value;
    state.modelsLoaded = true;
    if (!opts.length) say('No model: see Setup, step 1 (detect engines).');
  } catch (e) {
    fail(e, 'models');
  }
}

function updateUseCreated() {
  const b = $('chat-use-created');
  b.hidden = !state.createdKey;
  b.textContent = state.createdLabel ? `Use the key just created (${state.createdLabel})` : 'Use the key just created';
}

$('chat-models-refresh').addEventListener('click', loadModels);
$('chat-use-created').addEventListener('click', () => {
  $('chat-key').value = state.createdKey || '';
  say(`Using key ${show(state.createdLabel)}.`);
});
$('chat-stop').addEventListener('click', () => { if (state.chatAbort) state.chatAbort.abort(); });
$('chat-form').addEventListener('submit', (ev) => { ev.preventDefault(); sendChat(); });

function chatBusy(busy) {
  $('chat-send').disabled = busy;
  $('chat-stop').disabled = !busy;
  $('chat-output').setAttribute('aria-busy', String(busy));
}

async function sendChat() {
  if (state.chatAbort) return;
  const message = $('chat-message').value, key = $('chat-key').value.trim(), model = $('chat-model').value;
  if (!key) { say('Error: an API key is needed.', 'error'); $('chat-key').focus(); return; }
  if (!message.trim()) { say('Error: write a message.', 'error'); $('chat-message').focus(); return; }
  const body = { key, message };
  if (model) body.model = model;
  const out = $('chat-output');
  const text = document.createTextNode('');
  fill(out, text);
  state.chatAbort = new AbortController();
  chatBusy(true);
  say('Sending…');
  try {
    const resp = await request('/api/chat', body, state.chatAbort.signal);
    if (!resp.ok) await readJson(resp);  // throws with the error
    const err = await readStream(resp, (chunk) => chatChunk(chunk, text));
    if (err) throw new Error(err);
    say('Answer complete.', 'ok');
  } catch (e) {
    if (e.name === 'AbortError') say('Stopped.');
    else fail(e, 'chat');
  } finally {
    state.chatAbort = null;
    chatBusy(false);
  }
}

/* Read an NDJSON stream, one JSON object a line, as it comes; returns
 * the text of an {"error": ...} line, if one came. */
async function readStream(resp, onChunk) {
  let error = null;
  const line = (s) => {
    s = s.trim();
    if (!s) return;
    let obj;
    try { obj = JSON.parse(s); } catch (e) { error = 'a line of the answer is not JSON'; return; }
    if (obj && obj.error !== undefined) {
      error = typeof obj.error === 'string' ? obj.error : (obj.error.message || json(obj.error));
    } else {
      onChunk(obj);
    }
  };
  if (!resp.body || !resp.body.getReader) {  // no streams: all at once
    (await resp.text()).split('\n').forEach(line);
    return error;
  }
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      line(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
  line(buf + dec.decode());
  return error;
}

function chatChunk(obj, text) {
  const c = obj && Array.isArray(obj.choices) ? obj.choices[0] : null;
  // A stream sends delta; a whole chat.completion, message.
  const piece = c ? ((c.delta && c.delta.content) || (c.message && c.message.content) || '') : '';
  if (typeof piece === 'string' && piece) text.appendData(piece);
}

/* ---------- Setup ---------- */

ENTER.setup = () => {
  if (state.engines) renderEngines($('setup-engines'), state.engines);
};

$('setup-detect').addEventListener('click', () => detectEngines($('setup-engines')));

function setupMode() {
  const m = document.querySelector('#setup-proxy-form input[name="mode"]:checked');
  return m ? m.value : 'local-http';
}

$('setup-proxy-form').addEventListener('change', () => {
  const acme = setupMode() === 'https-acme';
  $('setup-acme-note').hidden = !acme;
  $('setup-proxy-start').disabled = acme;
});

$('setup-proxy-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const mode = setupMode();
  if (mode === 'https-acme') return;
  const port = Number($('setup-port').value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    say('Error: the port is a number from 0 to 65535.', 'error');
    $('setup-port').focus();
    return;
  }
  const body = { mode, port };
  const bind = $('setup-bind').value.trim();
  if (bind) body.bind = bind;
  const b = $('setup-proxy-start'), out = $('setup-proxy-result');
  b.disabled = true;
  fill(out, el('p', { class: 'hint' }, 'Starting…'));
  try {
    const p = await api('/api/proxy/start', body);
    const scheme = p.mode === 'local-http' ? 'http' : 'https';
    const host = String(p.bind || '127.0.0.1').includes(':') ? `[${p.bind}]` : (p.bind || '127.0.0.1');
    const url = `${scheme}://${host}:${show(p.port)}/v1`;
    fill(out, el('p', { class: 'st-ok' }, 'Proxy listening on ', el('code', null, url), ` (${show(p.mode)}).`),
      p.certificate && el('p', null, 'Certificate SHA-256 (clients pin it in dev-selfsigned): ',
        el('code', null, show(p.certificate.sha256))),
      el('details', null, el('summary', null, 'Raw JSON'), el('pre', { class: 'raw' }, json(p))));
    say(`Proxy started: ${url}.`, 'ok');
  } catch (e) {
    fill(out, el('p', { class: 'st-fail' }, fail(e, 'proxy start')));
  } finally {
    b.disabled = false;
  }
});

$('setup-key-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const b = $('setup-key-create');
  b.disabled = true;
  try {
    const r = await createKey($('setup-key-label').value.trim(), $('setup-key-expires').value.trim());
    ev.target.reset();
    showSecret('setup-key', r);
  } catch (e) {
    fail(e, 'create key');
  } finally {
    b.disabled = false;
  }
});

$('setup-firewall').addEventListener('click', async () => {
  const backend = $('setup-fw-backend').value;
  const pre = $('setup-firewall-text');
  try {
    const r = await api('/api/firewall' + (backend ? '?backend=' + encodeURIComponent(backend) : ''));
    pre.textContent = r && typeof r.text === 'string' ? r.text : json(r);
    pre.hidden = false;
    say('Firewall preview ready.', 'ok');
  } catch (e) {
    fail(e, 'firewall preview');
  }
});

/* ---------- start ---------- */

$('skip').addEventListener('click', (ev) => {
  // The fragment is the page: the skip link moves focus, not the hash.
  ev.preventDefault();
  $('main').focus();
});
window.addEventListener('hashchange', () => route(true));
state.session = loadSession();
route(false);

})();
