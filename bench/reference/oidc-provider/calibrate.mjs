// Calibration: server CPU of a trivial node http "hello" request and of one ES256 verify (WebCrypto via jose)
// on this machine, to put the per-flow figure in context.   node calibrate.mjs
import { execFileSync, fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';

import * as jose from 'jose';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const cpu = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
};

if (process.argv[2] === 'child') {
  http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('hello'); })
    .listen(0, '127.0.0.1', function () { process.send(this.address().port); });
} else {
  const child = fork(new URL(import.meta.url).pathname, ['child']);
  const port = await new Promise((r) => child.once('message', r));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const get = () => new Promise((r, j) => http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => { res.resume(); res.on('end', r); }).on('error', j));
  for (let i = 0; i < 500; i += 1) await get();
  const N = 4000;
  const before = cpu(child.pid);
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => { while (next < N) { next += 1; await get(); } }));
  console.log(`trivial node http request (keep-alive): ${((cpu(child.pid) - before) * 1e6 / N).toFixed(0)} us server CPU each`);
  child.kill();
  agent.destroy();

  const { publicKey, privateKey } = await jose.generateKeyPair('ES256');
  const jwt = await new jose.SignJWT({ a: 1 }).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
  for (let i = 0; i < 200; i += 1) await jose.jwtVerify(jwt, publicKey);
  const M = 2000;
  const b = cpu(process.pid);
  for (let i = 0; i < M; i += 1) await jose.jwtVerify(jwt, publicKey);
  console.log(`jose ES256 jwtVerify (key already imported): ${((cpu(process.pid) - b) * 1e6 / M).toFixed(0)} us CPU each`);
  const jwk = await jose.exportJWK(publicKey);
  const c = cpu(process.pid);
  for (let i = 0; i < M; i += 1) await jose.jwtVerify(jwt, await jose.importJWK(jwk, 'ES256'));
  console.log(`jose ES256 importJWK + jwtVerify (as for a DPoP proof): ${((cpu(process.pid) - c) * 1e6 / M).toFixed(0)} us CPU each`);
}
