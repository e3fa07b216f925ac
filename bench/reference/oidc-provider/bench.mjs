// Load generator + measurement for server.mjs (oidc-provider). Runs in its own node process.
//
//   node bench.mjs [--flows 200] [--warmup 2000] [--concurrency 4] [--runs 1] [--json out.json]
//                  [--workers 0|2] [--adapter memory|redis] [--provider-dir DIR]
//   node bench.mjs --check        negative checks: is PAR/PKCE/private_key_jwt/DPoP really enforced?
//   node bench.mjs --breakdown    per-endpoint server CPU, one flow at a time
//
// It generates the client's ES256 key pair and a DPoP key (private keys in memory only; the public JWKS
// goes to a temp file for the server), starts `node server.mjs` as a child process (and a private
// redis-server with --adapter redis), runs `warmup` flows (2,000 by default: V8 needs a few thousand
// requests before its figures settle, DESIGN §10; 20 left it unoptimised, ~60% more CPU), then reads utime+stime (fields 14+15 of
// /proc/<pid>/stat, / CLK_TCK) of the server process(es) (cluster: primary + workers), runs `flows`
// flows with `concurrency` flows in flight, reads the CPU again, and prints per-flow server CPU,
// flows/s and latency percentiles. Redis CPU is reported separately. --runs N repeats the measured
// part N times on the same server. SERVER_NODE_ARGS='--cpu-prof' passes flags to the server's node.
// --provider-dir DIR uses DIR/node_modules/oidc-provider (v8/ holds 8.8.1).
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import * as jose from 'jose';

const { values: a } = parseArgs({
  options: {
    flows: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '2000' }, // steady state: V8 optimises after a few thousand requests
    concurrency: { type: 'string', default: '4' },
    workers: { type: 'string', default: '0' },
    runs: { type: 'string', default: '1' },
    port: { type: 'string', default: '0' },
    json: { type: 'string', default: '' },
    breakdown: { type: 'boolean', default: false },
    check: { type: 'boolean', default: false }, // negative checks of the FAPI-like configuration, no measurement
    adapter: { type: 'string', default: 'memory' }, // memory | redis (needed for --workers > 0)
    'provider-dir': { type: 'string', default: new URL('.', import.meta.url).pathname },
  },
});
const FLOWS = Number(a.flows);
const WARMUP = Number(a.warmup);
if (WARMUP < 2000 && !a.check) console.error(`note: --warmup ${WARMUP} leaves V8 short of steady state (DESIGN §10 asks for >= 2000)`);
const CONCURRENCY = Number(a.concurrency);
const WORKERS = Number(a.workers);
const RUNS = Number(a.runs);
const CLIENT_ID = 'bench-bank';
const REDIRECT_URI = 'https://bench-bank.example/callback';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

// ---------- client keys (never written except the public half) ----------
const clientKey = await jose.generateKeyPair('ES256', { extractable: true });
const clientPub = { ...(await jose.exportJWK(clientKey.publicKey)), kid: 'bench-client-1', alg: 'ES256', use: 'sig' };
const dpopKey = await jose.generateKeyPair('ES256', { extractable: true });
const dpopPub = await jose.exportJWK(dpopKey.publicKey);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodebench-'));
const jwksFile = path.join(tmp, 'client_jwks.json');
fs.writeFileSync(jwksFile, JSON.stringify({ keys: [clientPub] }));

// ---------- start the server ----------
const port = Number(a.port) || await freePort();
const issuer = `http://127.0.0.1:${port}`;
// optional Redis for a shared adapter (its CPU is reported separately, not in the server CPU figure)
let redis = null;
const serverEnv = { ...process.env, BREAKDOWN: a.breakdown ? '1' : '', OIDC_ADAPTER: a.adapter };
if (a.adapter === 'redis') {
  const redisPort = await freePort();
  redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp], { stdio: 'ignore' });
  serverEnv.OIDC_REDIS_URL = `redis://127.0.0.1:${redisPort}`;
  await new Promise((r) => setTimeout(r, 300));
}
const serverNodeArgs = (process.env.SERVER_NODE_ARGS || '').split(' ').filter(Boolean); // e.g. --cpu-prof
const server = spawn(process.execPath, [...serverNodeArgs, new URL('./server.mjs', import.meta.url).pathname,
  '--port', String(port), '--client-jwks', jwksFile, '--workers', String(WORKERS), '--provider-dir', a['provider-dir']], { stdio: ['ignore', 'pipe', 'inherit'], env: serverEnv });
server.stdout.on('data', (d) => process.stderr.write(`[server] ${d}`));
process.on('exit', () => { try { server.kill('SIGTERM'); } catch {} try { redis?.kill('SIGTERM'); } catch {} fs.rmSync(tmp, { recursive: true, force: true }); });
await waitFor(`${issuer}/.well-known/openid-configuration`);
if (WORKERS > 0) await new Promise((r) => setTimeout(r, 1500)); // let every worker come up

// ---------- helpers ----------
function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const { port: p } = s.address(); s.close(() => resolve(p)); });
  });
}

async function waitFor(url) {
  for (let i = 0; i < 100; i += 1) {
    try { const r = await fetch(url); if (r.ok) return; } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not start');
}

function serverPids() {
  // the server process and, in cluster mode, its workers (direct children)
  const pids = [server.pid];
  try {
    const kids = fs.readFileSync(`/proc/${server.pid}/task/${server.pid}/children`, 'utf8').trim();
    if (kids) pids.push(...kids.split(/\s+/).map(Number));
  } catch {}
  return pids;
}

function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
    ticks += Number(fields[14 - 3]) + Number(fields[15 - 3]); // utime, stime
  }
  return ticks / CLK_TCK;
}

let requestCount = 0;

// Minimal HTTP client: keep-alive within one agent, manual redirects, a cookie jar for the browser.
function request(agent, method, url, { headers = {}, form, jar } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url, issuer);
    const body = form ? new URLSearchParams(Object.entries(form).filter(([, v]) => v !== undefined)).toString() : undefined;
    const h = { ...headers };
    if (body !== undefined) { h['content-type'] = 'application/x-www-form-urlencoded'; h['content-length'] = Buffer.byteLength(body); }
    if (jar && jar.size) h.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    requestCount += 1;
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (jar) {
          for (const sc of res.headers['set-cookie'] || []) {
            const [pair, ...attrs] = sc.split(';');
            const i = pair.indexOf('=');
            const name = pair.slice(0, i).trim();
            const value = pair.slice(i + 1).trim();
            const expired = attrs.some((x) => /^\s*expires=Thu, 01 Jan 1970/i.test(x)) || value === '';
            if (expired) jar.delete(name); else jar.set(name, value);
          }
        }
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');

async function clientAssertion() {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: clientPub.kid, typ: 'JWT' })
    .setIssuer(CLIENT_ID).setSubject(CLIENT_ID).setAudience(issuer)
    .setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 60)
    .sign(clientKey.privateKey);
}

const otherDpopKey = await jose.generateKeyPair('ES256', { extractable: true }); // for --check
const otherDpopPub = await jose.exportJWK(otherDpopKey.publicKey);

async function dpop(htm, htu, accessToken, useOtherKey = false) {
  const payload = { htm, htu, jti: crypto.randomUUID() };
  if (accessToken) payload.ath = b64u(crypto.createHash('sha256').update(accessToken).digest());
  return new jose.SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: useOtherKey ? otherDpopPub : dpopPub })
    .setIssuedAt()
    .sign(useOtherKey ? otherDpopKey.privateKey : dpopKey.privateKey);
}

function expect(res, status, what) {
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${res.headers.location || ''} ${res.body.slice(0, 300)}`);
  return res;
}

// ---------- one complete flow ----------
async function oneFlow(opts = {}) {
  const started = performance.now();
  const backchannel = new http.Agent({ keepAlive: true, maxSockets: 1 }); // like one requests.Session per flow
  const browser = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const jar = new Map();
  try {
    const verifier = b64u(crypto.randomBytes(32));
    const challenge = b64u(crypto.createHash('sha256').update(verifier).digest());
    const assertionType = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

    // 1. PAR (private_key_jwt + DPoP)
    const par = expect(await request(backchannel, 'POST', `${issuer}/request`, {
      headers: { dpop: await dpop('POST', `${issuer}/request`) },
      form: {
        client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid',
        state: crypto.randomBytes(8).toString('hex'), nonce: crypto.randomBytes(8).toString('hex'),
        code_challenge: challenge, code_challenge_method: 'S256',
        client_assertion_type: assertionType, client_assertion: await clientAssertion(),
      },
    }), 201, 'PAR');
    const { request_uri: requestUri } = JSON.parse(par.body);

    // 2. browser: authorize -> login form -> login -> resume -> consent form -> approve -> resume -> redirect
    let res = expect(await request(browser, 'GET', `/auth?${new URLSearchParams({ client_id: CLIENT_ID, request_uri: requestUri })}`, { jar }), 303, 'authorize');
    res = expect(await request(browser, 'GET', res.headers.location, { jar }), 200, 'login page');
    const loginAction = res.body.match(/action="([^"]+\/login)"/)[1];
    res = expect(await request(browser, 'POST', loginAction, { jar, form: { login: 'A123456789' } }), 303, 'login');
    res = expect(await request(browser, 'GET', res.headers.location, { jar }), 303, 'resume after login');
    res = expect(await request(browser, 'GET', res.headers.location, { jar }), 200, 'consent page');
    const confirmAction = res.body.match(/action="([^"]+\/confirm)"/)[1];
    res = expect(await request(browser, 'POST', confirmAction, { jar, form: {} }), 303, 'approve');
    res = expect(await request(browser, 'GET', res.headers.location, { jar }), 303, 'resume after consent');
    const callback = new URL(res.headers.location);
    if (!res.headers.location.startsWith(REDIRECT_URI)) throw new Error(`unexpected redirect ${res.headers.location}`);
    const code = callback.searchParams.get('code');
    if (!code) throw new Error(`no code in ${res.headers.location}`);
    if (callback.searchParams.get('iss') !== issuer) throw new Error('no/wrong iss in authorization response');

    // 3. token (authorization_code + PKCE + private_key_jwt + DPoP)
    if (opts.tokenVariant) { // --check only: a deliberately wrong token request, returned as is
      const headers = opts.tokenVariant === 'no DPoP proof' ? {} : { dpop: await dpop('POST', `${issuer}/token`, undefined, opts.tokenVariant === 'DPoP proof from another key') };
      return await request(backchannel, 'POST', `${issuer}/token`, {
        headers,
        form: {
          grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI,
          code_verifier: opts.tokenVariant === 'wrong code_verifier' ? b64u(crypto.randomBytes(32)) : verifier,
          client_assertion_type: assertionType, client_assertion: await clientAssertion(),
        },
      });
    }
    const tok = expect(await request(backchannel, 'POST', `${issuer}/token`, {
      headers: { dpop: await dpop('POST', `${issuer}/token`) },
      form: {
        grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier,
        client_assertion_type: assertionType, client_assertion: await clientAssertion(),
      },
    }), 200, 'token');
    const tokens = JSON.parse(tok.body);
    if (tokens.token_type !== 'DPoP' || !tokens.id_token) throw new Error(`bad token response ${tok.body}`);
    if (JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')).alg !== 'ES256') throw new Error('id_token not ES256');

    // 4. userinfo with the DPoP-bound access token
    const me = expect(await request(backchannel, 'GET', `${issuer}/me`, {
      headers: { authorization: `DPoP ${tokens.access_token}`, dpop: await dpop('GET', `${issuer}/me`, tokens.access_token) },
    }), 200, 'userinfo');
    if (JSON.parse(me.body).sub !== 'A123456789') throw new Error(`bad userinfo ${me.body}`);
    if (opts.userinfoChecks) { // --check only
      const proof = await dpop('GET', `${issuer}/me`, tokens.access_token);
      const ok = await request(backchannel, 'GET', `${issuer}/me`, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: proof } });
      const replay = await request(backchannel, 'GET', `${issuer}/me`, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: proof } });
      const bearer = await request(backchannel, 'GET', `${issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      const otherKey = await request(backchannel, 'GET', `${issuer}/me`, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: await dpop('GET', `${issuer}/me`, tokens.access_token, true) } });
      return { ok, replay, bearer, otherKey };
    }
  } finally {
    backchannel.destroy();
    browser.destroy();
  }
  return performance.now() - started;
}

async function runFlows(n) {
  const latencies = [];
  let next = 0;
  async function lane() {
    while (next < n) { next += 1; latencies.push(await oneFlow()); }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return latencies;
}

function pct(values, share) {
  const s = [...values].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(share * s.length) - 1))];
}

// ---------- optional negative checks: is the configuration really enforced? ----------
if (a.check) {
  const line = (what, res, want) => console.log(`${(want(res.status) ? 'OK  ' : 'FAIL')} ${what}: HTTP ${res.status} ${(res.body || '').replace(/\s+/g, ' ').slice(0, 140)}`);
  const disco = JSON.parse((await request(undefined, 'GET', '/.well-known/openid-configuration')).body);
  for (const k of ['require_pushed_authorization_requests', 'pushed_authorization_request_endpoint', 'token_endpoint_auth_methods_supported',
    'token_endpoint_auth_signing_alg_values_supported', 'dpop_signing_alg_values_supported', 'id_token_signing_alg_values_supported',
    'code_challenge_methods_supported', 'response_types_supported', 'authorization_response_iss_parameter_supported', 'userinfo_endpoint']) {
    console.log(`     discovery ${k} = ${JSON.stringify(disco[k])}`);
  }
  await oneFlow();
  console.log('OK   complete flow (PAR+private_key_jwt+DPoP, login, consent, token+PKCE+DPoP, userinfo+DPoP)');
  const par = (form, headers = {}) => request(undefined, 'POST', '/request', { headers, form });
  const base = async () => ({ client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid',
    code_challenge: b64u(crypto.randomBytes(32)), code_challenge_method: 'S256',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await clientAssertion() });
  const noPar = await request(undefined, 'GET', `/auth?${new URLSearchParams({ client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: b64u(crypto.randomBytes(32)), code_challenge_method: 'S256' })}`);
  line('authorization request without PAR (error sent to redirect_uri)', { ...noPar, body: noPar.headers.location || noPar.body }, (s) => s === 303 && /[?&]error=/.test(noPar.headers.location || '') && !/[?&]code=/.test(noPar.headers.location || ''));
  line('PAR without client authentication', await par({ ...(await base()), client_assertion: undefined, client_assertion_type: undefined }), (s) => s === 401 || s === 400);
  line('PAR with client_secret_post', await par({ ...(await base()), client_assertion: undefined, client_assertion_type: undefined, client_secret: 'x' }), (s) => s === 401 || s === 400);
  const replayed = await clientAssertion();
  await par({ ...(await base()), client_assertion: replayed });
  line('PAR with a replayed client assertion', await par({ ...(await base()), client_assertion: replayed }), (s) => s >= 400);
  line('PAR without PKCE', await par({ ...(await base()), code_challenge: undefined, code_challenge_method: undefined }), (s) => s === 400);
  line('PAR with PKCE plain', await par({ ...(await base()), code_challenge_method: 'plain' }), (s) => s === 400);
  line('PAR with response_type=code id_token', await par({ ...(await base()), response_type: 'code id_token' }), (s) => s === 400);
  for (const v of ['no DPoP proof', 'DPoP proof from another key', 'wrong code_verifier']) {
    line(`token request with ${v}`, await oneFlow({ tokenVariant: v }), (s) => s === 400 || s === 401);
  }
  const u = await oneFlow({ userinfoChecks: true });
  line('userinfo with DPoP token + fresh proof', u.ok, (s) => s === 200);
  line('userinfo with a replayed DPoP proof', u.replay, (s) => s === 401 || s === 400);
  line('userinfo with the DPoP token as Bearer', u.bearer, (s) => s === 401 || s === 400);
  line('userinfo with a proof from another key', u.otherKey, (s) => s === 401 || s === 400);
  server.kill('SIGTERM');
  process.exit(0);
}

// ---------- optional per-endpoint breakdown (server started with BREAKDOWN=1, one flow at a time) ----------
if (a.breakdown) {
  for (let i = 0; i < WARMUP; i += 1) await oneFlow();
  await request(undefined, 'GET', '/__breakdown');
  const before = cpuSeconds([server.pid]);
  for (let i = 0; i < FLOWS; i += 1) await oneFlow();
  const total = ((cpuSeconds([server.pid]) - before) * 1000) / FLOWS;
  const out = JSON.parse((await request(undefined, 'GET', '/__breakdown')).body);
  let sum = 0;
  for (const [k, v] of Object.entries(out)) { sum += (v.us_each * v.n) / FLOWS; console.log(`${k.padEnd(32)} ${String(v.n / FLOWS).padStart(3)}x ${String(v.us_each).padStart(6)} us`); }
  console.log(`sum of request handlers: ${(sum / 1000).toFixed(2)} ms/flow; whole process (/proc, concurrency 1): ${total.toFixed(2)} ms/flow`);
  server.kill('SIGTERM');
  process.exit(0);
}

// ---------- measure ----------
requestCount = 0;
await oneFlow();
const requestsPerFlow = requestCount;
await runFlows(WARMUP - 1);
const pids = serverPids();
const version = JSON.parse(fs.readFileSync(`${a['provider-dir'].replace(/\/$/, '')}/node_modules/oidc-provider/package.json`)).version;
const results = [];
for (let run = 1; run <= RUNS; run += 1) {
  const before = cpuSeconds(pids);
  const perPidBefore = pids.map((p) => cpuSeconds([p]));
  const loadgenBefore = process.cpuUsage();
  const redisBefore = redis ? cpuSeconds([redis.pid]) : 0;
  const t0 = performance.now();
  const lat = await runFlows(FLOWS);
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pids) - before;
  const redisCpu = redis ? cpuSeconds([redis.pid]) - redisBefore : 0;
  const perPid = pids.map((p, i) => +(((cpuSeconds([p]) - perPidBefore[i]) * 1000) / FLOWS).toFixed(2));
  const lg = process.cpuUsage(loadgenBefore);
  const r = {
    run, flows: FLOWS, concurrency: CONCURRENCY, server_processes: pids.length, workers: WORKERS,
    flows_per_second: +(FLOWS / wall).toFixed(1),
    latency_ms: { p50: +pct(lat, 0.5).toFixed(1), p95: +pct(lat, 0.95).toFixed(1), p99: +pct(lat, 0.99).toFixed(1) },
    server_cpu_ms_per_flow: +((cpu * 1000) / FLOWS).toFixed(2),
    http_requests_per_flow: requestsPerFlow,
    adapter: a.adapter,
    server_cpu_ms_per_flow_by_process: perPid, // [main or cluster primary, workers...]
    loadgen_cpu_ms_per_flow: +((lg.user + lg.system) / 1000 / FLOWS).toFixed(2),
    ...(redis ? { redis_cpu_ms_per_flow: +((redisCpu * 1000) / FLOWS).toFixed(2) } : {}),
  };
  results.push(r);
  console.log(`oidc-provider ${version} node ${process.version} ${WORKERS ? `cluster ${WORKERS} workers` : 'single process'}: run ${run}: `
    + `${r.flows_per_second} flows/s, p50 ${r.latency_ms.p50} ms, p95 ${r.latency_ms.p95} ms, `
    + `server CPU ${r.server_cpu_ms_per_flow} ms/flow${redis ? ` (+ redis ${r.redis_cpu_ms_per_flow} ms/flow)` : ''}, `
    + `${requestsPerFlow} HTTP requests/flow, ${a.adapter} adapter, ${pids.length} server process(es)`
    + `${pids.length > 1 ? ` [by process ${perPid.join(' / ')}]` : ''}; load generator ${r.loadgen_cpu_ms_per_flow} ms/flow`);
}
if (a.json) fs.writeFileSync(a.json, `${JSON.stringify({ oidc_provider: version, node: process.version, results }, null, 2)}\n`);
server.kill('SIGTERM');
await new Promise((r) => { server.once('exit', r); setTimeout(r, 5000); });
process.exit(0);
