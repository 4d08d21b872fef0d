'use strict';
// wx-session.d.ts names what the built file has: every member of a session,
// every field of a ServiceError, every option createSession reads. (The
// types themselves are checked by `tsc -p client/test/types`.)

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const createSession = require('../wx-session');

const declarations = fs.readFileSync(path.join(__dirname, '..', 'wx-session.d.ts'), 'utf8');

/** Member names declared in `interface NAME {...}` or `class NAME ... {...}`. */
function membersOf(kind, name) {
  const start = new RegExp(`\\b${kind} ${name}\\b[^{]*\\{`).exec(declarations);
  assert.ok(start, `${kind} ${name} is declared`);
  let depth = 1;
  let i = start.index + start[0].length;
  const body = [];
  for (; depth > 0; i++) {
    const c = declarations[i];
    if (c === '{') depth++;
    if (c === '}') depth--;
    body.push(depth === 1 ? c : ' ');
  }
  const text = body.join('').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
  return new Set([...text.matchAll(/^\s*(?:readonly\s+)?([A-Za-z_$][\w$]*)\??\s*[(:<]/gm)].map((m) => m[1]));
}

const wx = {
  request() {},
  login() {},
  getStorageSync: () => '',
  setStorageSync() {},
};

test('every member of a session is declared in interface Session, and nothing more', () => {
  const session = createSession({ baseURL: 'https://svc.test', wx });
  assert.deepEqual([...membersOf('interface', 'Session')].sort(), Object.keys(session).sort());
});

test('the promise of request() is declared with task and abort', () => {
  const session = createSession({ baseURL: 'https://svc.test', wx });
  const call = session.request({ url: '/x' });
  assert.equal(call.task, null);
  assert.equal(typeof call.abort, 'function');
  assert.deepEqual([...membersOf('interface', 'RequestPromise')].sort(), ['abort', 'task']);
  call.abort();
  return call.catch(() => {});
});

test('every field of a ServiceError is declared', () => {
  const error = new createSession.ServiceError(429, { code: 1008, error: 'rate_limited', message: 'slow' }, {});
  const declared = membersOf('class', 'ServiceError');
  for (const field of Object.keys(error)) assert.ok(declared.has(field), field);
  assert.ok(declared.has('refreshError'));
});

test('every option createSession reads is declared, and every path', () => {
  const read = new Set();
  const options = new Proxy({ baseURL: 'https://svc.test', wx }, {
    get(target, name) {
      read.add(name);
      return target[name];
    },
  });
  createSession(options);
  assert.deepEqual([...read].sort(), [...membersOf('interface', 'SessionOptions')].sort());
  assert.deepEqual([...membersOf('interface', 'Paths')].sort(),
    ['account', 'avatar', 'bindInfo', 'bindPhone', 'check', 'info', 'login', 'logout', 'profile']);
});
