// Minimal FAPI-2.0-like OpenID Provider built on panva's oidc-provider, for measuring server CPU per flow.
//
//   node server.mjs --port 3000 --client-jwks client_jwks.json [--workers 2]
//
// The OP signing key (ES256, P-256) and the cookie keys are generated at startup and never written to
// disk. With --workers N the node `cluster` module forks N workers that all load the SAME key material
// (handed down by the primary through environment variables, in memory only). The default in-memory
// adapter is per process, so cluster mode needs OIDC_ADAPTER=redis (redis_adapter.mjs, OIDC_REDIS_URL);
// bench.mjs --adapter redis starts a private redis-server for that.
import cluster from 'node:cluster';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';


const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '3000' },
    'client-jwks': { type: 'string', default: new URL('./client_jwks.json', import.meta.url).pathname },
    workers: { type: 'string', default: '0' },
    // folder whose node_modules/oidc-provider is used (default: this folder, i.e. v9; v8/ holds 8.8.1)
    'provider-dir': { type: 'string', default: new URL('.', import.meta.url).pathname },
  },
});
const providerDir = args['provider-dir'];
const { default: Provider } = await import(`${providerDir.replace(/\/$/, '')}/node_modules/oidc-provider/lib/index.js`);
const providerVersion = JSON.parse(fs.readFileSync(`${providerDir.replace(/\/$/, '')}/node_modules/oidc-provider/package.json`, 'utf8')).version;
const port = Number(args.port);
const issuer = `http://127.0.0.1:${port}`;
const workers = Number(args.workers);

process.on('SIGTERM', () => process.exit(0)); // exit cleanly (lets --cpu-prof write its profile)

if (workers > 0 && cluster.isPrimary) {
  // Key material made once, shared in memory with the workers.
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  process.env.OP_JWK = JSON.stringify({ ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'ES256', use: 'sig' });
  process.env.OP_COOKIE_KEY = crypto.randomBytes(32).toString('base64url');
  for (let i = 0; i < workers; i += 1) cluster.fork();
  cluster.on('exit', (w, code) => { console.error(`worker ${w.process.pid} exited ${code}`); });
  console.log(`primary ${process.pid} forked ${workers} workers on ${issuer}`);
} else {
  await startServer();
}

async function startServer() {
  let opJwk;
  if (process.env.OP_JWK) {
    opJwk = JSON.parse(process.env.OP_JWK);
  } else {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    opJwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'ES256', use: 'sig' };
  }
  const cookieKey = process.env.OP_COOKIE_KEY || crypto.randomBytes(32).toString('base64url');
  const clientJwks = JSON.parse(fs.readFileSync(args['client-jwks'], 'utf8'));

  const configuration = {
    clients: [{
      client_id: 'bench-bank',
      client_name: 'Bench bank',
      application_type: 'web',
      redirect_uris: ['https://bench-bank.example/callback'],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      id_token_signed_response_alg: 'ES256',
      dpop_bound_access_tokens: true, // DPoP required at the token endpoint for this client
      jwks: clientJwks,
    }],
    clientDefaults: {
      id_token_signed_response_alg: 'ES256',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
    clientAuthMethods: ['private_key_jwt'],
    responseTypes: ['code'],
    scopes: ['openid'],
    claims: { openid: ['sub'] },
    jwks: { keys: [opJwk] },
    cookies: { keys: [cookieKey] },
    pkce: providerVersion.startsWith('8.')
      ? { required: () => true, methods: ['S256'] }
      : { required: () => true }, // oidc-provider v9 only implements S256
    enabledJWA: {
      clientAuthSigningAlgValues: ['ES256'],
      idTokenSigningAlgValues: ['ES256'],
      dPoPSigningAlgValues: ['ES256'],
      requestObjectSigningAlgValues: ['ES256'],
      userinfoSigningAlgValues: ['ES256'],
      authorizationSigningAlgValues: ['ES256'],
    },
    features: {
      devInteractions: { enabled: false },
      fapi: { enabled: true, profile: '2.0' },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true },
      dPoP: { enabled: true }, // nonces not required (default requireNonce: () => false), replay check on
      userinfo: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
    },
    async findAccount(ctx, sub) {
      return { accountId: sub, async claims() { return { sub }; } };
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>error</title><pre>${escape(JSON.stringify(out))}</pre>`;
    },
  };

  if (process.env.OIDC_ADAPTER === 'redis') {
    configuration.adapter = (await import('./redis_adapter.mjs')).default;
  }

  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  const oidc = provider.callback();

  // Optional per-endpoint CPU accounting (BREAKDOWN=1, meaningful only with one flow in flight at a time).
  const breakdown = process.env.BREAKDOWN === '1' ? new Map() : null;
  const server = http.createServer(async (req, res) => {
    if (breakdown) {
      if (req.url === '/__breakdown') {
        const out = Object.fromEntries([...breakdown].map(([k, v]) => [k, { n: v.n, us_each: Math.round(v.us / v.n) }]));
        breakdown.clear();
        return send(res, 200, { 'content-type': 'application/json' }, JSON.stringify(out));
      }
      const start = process.cpuUsage();
      const key = `${req.method} ${req.url.split('?')[0].replace(/\/(interaction|auth)\/[^/]+/, '/$1/:uid')}`;
      res.on('finish', () => {
        const d = process.cpuUsage(start);
        const e = breakdown.get(key) || { n: 0, us: 0 };
        e.n += 1; e.us += d.user + d.system;
        breakdown.set(key, e);
      });
    }
    try {
      if (req.url.startsWith('/interaction/')) {
        await interaction(provider, req, res);
      } else {
        oidc(req, res);
      }
    } catch (err) {
      console.error(err);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
      }
      res.end('error');
    }
  });
  server.keepAliveTimeout = 30_000;
  server.listen(port, '127.0.0.1', () => console.log(`pid ${process.pid} listening on ${issuer} (oidc-provider ${providerVersion}, FAPI 2.0 profile, ${process.env.OIDC_ADAPTER === 'redis' ? 'redis' : 'memory'} adapter)`));
}

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}

async function readForm(req) {
  let raw = '';
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > 10_000) throw new Error('form too large');
  }
  return new URLSearchParams(raw);
}

function send(res, status, headers, body) {
  res.writeHead(status, headers);
  res.end(body);
}

// GET /interaction/:uid            -> login form or consent form, depending on the pending prompt
// POST /interaction/:uid/login      -> login finished (accountId from the form)
// POST /interaction/:uid/confirm    -> consent: grant the requested 'openid' scope
async function interaction(provider, req, res) {
  const path = req.url.split('?')[0];
  const details = await provider.interactionDetails(req, res); // checks the interaction cookie
  const { uid, prompt, params, session } = details;
  if (!path.startsWith(`/interaction/${uid}`)) {
    return send(res, 400, { 'content-type': 'text/plain' }, 'interaction mismatch');
  }

  if (req.method === 'GET' && path === `/interaction/${uid}`) {
    if (prompt.name === 'login') {
      return send(res, 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }, page('Sign in', `
<form method="post" action="/interaction/${escape(uid)}/login">
  <label>Subject <input name="login" autofocus></label>
  <button type="submit">Sign in</button>
</form>`));
    }
    if (prompt.name === 'consent') {
      return send(res, 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }, page('Approve', `
<p>${escape(params.client_id)} asks for: ${escape(params.scope)}</p>
<form method="post" action="/interaction/${escape(uid)}/confirm"><button type="submit">Approve</button></form>`));
    }
    return send(res, 400, { 'content-type': 'text/plain' }, `unknown prompt ${prompt.name}`);
  }

  if (req.method === 'POST' && path === `/interaction/${uid}/login` && prompt.name === 'login') {
    const form = await readForm(req);
    const accountId = form.get('login');
    if (!accountId || accountId.length > 64) return send(res, 400, { 'content-type': 'text/plain' }, 'bad login');
    return provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
  }

  if (req.method === 'POST' && path === `/interaction/${uid}/confirm` && prompt.name === 'consent') {
    await readForm(req);
    const grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const { missingOIDCScope } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  return send(res, 405, { 'content-type': 'text/plain' }, 'method not allowed');
}
