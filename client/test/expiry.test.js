'use strict';
// Cookie expiry against the real service: sessions of 3 seconds.

const { test } = require('node:test');
const assert = require('node:assert/strict');

const createSession = require('../wx-session');
const { useStack } = require('./stack');
const { createWx } = require('./wx');

const TTL = 3;
const stack = useStack({ env: { SESSION_TTL: String(TTL), SESSION_RENEW_INTERVAL: '1' } });

const header = (record, name) => {
  const key = Object.keys(record.header).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : record.header[key];
};

test('an expired cookie is not sent; the 401 logs in again (cookie and bearer mode)', async () => {
  const cookieWx = createWx(stack, { cookieMode: 'joined' });
  const cookie = createSession({ baseURL: stack.service, wx: cookieWx });
  const bearerWx = createWx(stack, { cookieMode: 'cookies' });
  const bearer = createSession({ baseURL: stack.service, wx: bearerWx, useBearer: true });

  const started = Date.now();
  const [first] = await Promise.all([cookie.login(), bearer.login()]);
  assert.equal(first.expiresIn, TTL);
  const stored = cookieWx.getStorageSync('wx-session:cookies').sid;
  assert.equal(stored.value, first.token);
  assert.ok(stored.expires - started <= (TTL + 1) * 1000 && stored.expires - started > (TTL - 1) * 1000,
    `Max-Age=${TTL} honoured: ${stored.expires - started} ms`);
  await cookie.request({ url: '/user/info' });
  assert.equal(header(cookieWx.requests.at(-1), 'cookie'), `sid=${first.token}`);

  // Past the cookie's Max-Age (and the server-side session's TTL).
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, stored.expires - Date.now()) + 300));

  assert.ok((await cookie.request({ url: '/user/info' })) !== null);
  const after = cookieWx.requests.slice(2);
  assert.deepEqual(after.map((r) => `${r.path} ${r.statusCode}`),
    ['/user/info 401', '/oauth/login 200', '/user/info 200']);
  assert.equal(header(after[0], 'cookie'), undefined, 'the expired cookie was not sent');
  const renewed = cookieWx.getStorageSync('wx-session:cookies').sid;
  assert.notEqual(renewed.value, first.token);
  assert.equal(header(after[2], 'cookie'), `sid=${renewed.value}`);
  assert.equal(cookieWx.loginCalls, 2);

  // Bearer mode holds no expiry: the stale token goes out, the service says 401, one re-login.
  await bearer.request({ url: '/user/info' });
  assert.deepEqual(bearerWx.requests.slice(1).map((r) => `${r.path} ${r.statusCode}`),
    ['/user/info 401', '/oauth/login 200', '/user/info 200']);
  assert.equal(bearerWx.loginCalls, 2);
});

test('launch() with only an expired cookie stored counts as nothing stored: no checkSession, one login', async () => {
  const wx = createWx(stack);
  const session = createSession({ baseURL: stack.service, wx });
  await session.login();
  const expires = wx.getStorageSync('wx-session:cookies').sid.expires;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, expires - Date.now()) + 300));
  const restarted = createSession({ baseURL: stack.service, wx });
  await restarted.launch();
  assert.equal(wx.checkSessionCalls, 0);
  assert.equal(wx.loginCalls, 2);
  assert.deepEqual(wx.requests.slice(1).map((r) => `${r.path} ${r.statusCode}`), ['/oauth/login 200', '/user/info 200']);
  assert.equal(header(wx.requests[1], 'cookie'), undefined);
});
