'use strict';
// wx-session.js against the real service (gunicorn, two workers) and the WeChat emulator.

const { test } = require('node:test');
const assert = require('node:assert/strict');

const createSession = require('../wx-session');
const { useStack, freePorts } = require('./stack');
const { COOKIE_MODES, createWx, emulatorCalls, endSession } = require('./wx');

const { ServiceError } = createSession;

// LOGIN_DEDUP_WINDOW=0: two logins of one user make two sessions, so that
// logout({all: true}) can be seen ending more than the caller's own.
const stack = useStack({ env: { LOGIN_DEDUP_WINDOW: '0' } });

function device(options = {}) {
  const wx = createWx(stack, { cookieMode: options.cookieMode });
  const session = createSession(Object.assign({ baseURL: stack.service, wx }, options.session));
  return { wx, session };
}

const header = (record, name) => {
  const key = Object.keys(record.header).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : record.header[key];
};

const EMPTY_PROFILE = {
  nickName: null, avatarUrl: null, gender: null, city: null, province: null, country: null,
  language: null, phoneNumber: null, purePhoneNumber: null, countryCode: null,
  avatarReview: null,
};

async function serverSays(token) {
  const response = await fetch(`${stack.service}/user/info`, { headers: { authorization: `Bearer ${token}` } });
  return response.status;
}

for (const useBearer of [false, true]) {
  const mode = useBearer ? 'bearer' : 'cookie';

  for (const cookieMode of COOKIE_MODES) {
    test(`${mode} mode, Set-Cookie as '${cookieMode}': login, then GET /user/info; the session survives a restart`, async () => {
      const { wx, session } = device({ cookieMode, session: { useBearer } });
      const started = Date.now();
      const { token, expiresIn } = await session.login();
      assert.match(token, /^[a-z2-7]{4}[A-Za-z0-9_-]{51}$/); // tag, 256 random bits, MAC
      assert.equal(expiresIn, 604800);

      const stored = wx.getStorageSync('wx-session:cookies');
      assert.deepEqual(Object.keys(stored), ['sid']);
      assert.equal(stored.sid.value, token);
      const lifetime = stored.sid.expires - started;
      assert.ok(lifetime > 604790 * 1000 && lifetime <= 604802 * 1000, `cookie lifetime ${lifetime} ms`);
      assert.equal(wx.getStorageSync('wx-session:token'), token);

      assert.deepEqual(await session.request({ url: '/user/info' }), EMPTY_PROFILE);
      const info = wx.sent('/user/info').at(-1);
      if (useBearer) {
        assert.equal(header(info, 'authorization'), `Bearer ${token}`);
        assert.equal(header(info, 'cookie'), undefined);
      } else {
        assert.equal(header(info, 'cookie'), `sid=${token}`);
        assert.equal(header(info, 'authorization'), undefined);
      }

      // The mini program restarts: a new session object over the same wx storage.
      const restarted = createSession({ baseURL: stack.service, wx, useBearer });
      assert.deepEqual(await restarted.request({ url: '/user/info' }), EMPTY_PROFILE);
      assert.equal(wx.loginCalls, 1, 'the stored session was used, no new login');
      assert.equal(wx.sent('/oauth/login').length, 1);
      assert.deepEqual(wx.requests.map((r) => r.statusCode), [200, 200, 200]);
    });
  }

  test(`${mode} mode: 10 parallel calls on an expired session share one re-login`, async () => {
    const { wx, session } = device({ session: { useBearer } });
    const { token } = await session.login();
    await session.request({ url: '/user/info' });
    await endSession(stack, token); // the client still holds the now-dead cookie and token
    assert.equal(await serverSays(token), 401);

    const loginsBefore = wx.loginCalls;
    const postsBefore = wx.sent('/oauth/login').length;
    const exchangesBefore = (await emulatorCalls(stack, 'jscode2session')).length;
    const codesBefore = wx.codes.length;

    const results = await Promise.all(Array.from({ length: 10 }, () => session.request({ url: '/user/info' })));

    assert.equal(results.length, 10);
    for (const result of results) assert.deepEqual(result, EMPTY_PROFILE);
    assert.equal(wx.loginCalls - loginsBefore, 1, 'exactly one wx.login');
    assert.equal(wx.sent('/oauth/login').length - postsBefore, 1, 'exactly one POST /oauth/login');
    const exchanges = (await emulatorCalls(stack, 'jscode2session')).slice(exchangesBefore);
    assert.equal(exchanges.length, 1, 'WeChat saw exactly one jscode2session');
    assert.equal(exchanges[0].query.js_code, wx.codes[codesBefore]);
    const infos = wx.sent('/user/info').slice(1);
    assert.equal(infos.length, 20, '10 calls, 10 retries');
    assert.equal(infos.filter((r) => r.statusCode === 401).length, 10);
    assert.equal(infos.filter((r) => r.statusCode === 200).length, 10);
    const fresh = wx.getStorageSync('wx-session:token');
    assert.notEqual(fresh, token);
    for (const retry of infos.filter((r) => r.statusCode === 200)) {
      assert.equal(useBearer ? header(retry, 'authorization') : header(retry, 'cookie'),
        useBearer ? `Bearer ${fresh}` : `sid=${fresh}`);
    }
  });
}

test('a second 401 rejects: one re-login, one retry, no loop', async () => {
  const { wx, session } = device();
  // Every session the service hands out is ended before the client can use it.
  wx.afterResponse = async (record, res) => {
    if (record.path === '/oauth/login' && res.statusCode === 200) {
      await endSession(stack, res.data.data.token);
    }
  };
  const error = await session.request({ url: '/user/info' }).catch((e) => e);
  assert.ok(error instanceof ServiceError);
  assert.deepEqual([error.statusCode, error.code, error.error], [401, 2001, 'unauthorized']);
  assert.deepEqual(wx.requests.map((r) => `${r.path} ${r.statusCode}`),
    ['/user/info 401', '/oauth/login 200', '/user/info 401']);
  assert.equal(header(wx.requests[2], 'cookie'), `sid=${wx.getStorageSync('wx-session:token')}`,
    'the retry carried the new (already ended) session');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(wx.requests.length, 3, 'nothing more was sent');
  assert.equal(wx.loginCalls, 1);
});

test('a re-login the service refuses rejects with its error, no loop', async () => {
  const { wx, session } = device();
  wx.loginCode = () => 'a-code-wechat-never-issued';
  const error = await session.request({ url: '/user/info' }).catch((e) => e);
  assert.deepEqual([error.statusCode, error.code, error.error], [400, 3001, 'code_invalid']);
  assert.deepEqual(wx.requests.map((r) => `${r.path} ${r.statusCode}`), ['/user/info 401', '/oauth/login 400']);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(wx.requests.length, 2);
});

test('logout: the deleting Set-Cookie empties the jar, no Cookie is sent, the session is over', async () => {
  const { wx, session } = device();
  const { token } = await session.login();
  await session.launch();
  assert.deepEqual(session.user, EMPTY_PROFILE);
  assert.deepEqual(await session.logout(), { ended: 1 });

  const reply = wx.sent('/oauth/logout')[0];
  assert.equal(header(reply, 'cookie'), `sid=${token}`);
  assert.equal(reply.setCookie.length, 1);
  assert.match(reply.setCookie[0], /^sid=; .*Max-Age=0/);
  assert.deepEqual(wx.getStorageSync('wx-session:cookies'), '');
  assert.equal(wx.getStorageSync('wx-session:token'), '');
  assert.equal(session.user, null);
  assert.equal(await serverSays(token), 401);

  const missing = await session.request({ url: '/no/such/endpoint' }).catch((e) => e);
  assert.equal(missing.error, 'not_found');
  assert.equal(header(wx.requests.at(-1), 'cookie'), undefined, 'no Cookie header after logout');
});

test('logout({all: true}) ends every session of the user on the server', async () => {
  const { wx, session } = device();
  const first = (await session.login()).token;
  const second = (await session.login()).token; // LOGIN_DEDUP_WINDOW=0: a second session
  assert.notEqual(first, second);
  assert.equal(await serverSays(first), 200);
  assert.equal(await serverSays(second), 200);

  assert.deepEqual(await session.logout({ all: true }), { ended: 2 });
  assert.deepEqual(wx.sent('/oauth/logout')[0].data, { all: true });
  assert.equal(await serverSays(first), 401);
  assert.equal(await serverSays(second), 401);
  assert.deepEqual(wx.getStorageSync('wx-session:cookies'), '');
});

test('logout clears the stored session even when the reply is an error', async () => {
  const [closed] = await freePorts(1);
  const { wx } = device();
  wx.setStorageSync('wx-session:cookies', { sid: { value: 'x', expires: null } });
  wx.setStorageSync('wx-session:token', 'x');
  const offline = createSession({ baseURL: `http://127.0.0.1:${closed}`, wx });
  const error = await offline.logout().catch((e) => e);
  assert.equal(error.error, 'network_error');
  assert.deepEqual(wx.storageKeys(), []);
});

test('clear() forgets the cookies and the token', async () => {
  const { wx, session } = device();
  await session.login();
  session.clear();
  assert.deepEqual(wx.storageKeys(), []);
  await session.request({ url: '/user/info' });
  assert.equal(header(wx.sent('/user/info')[0], 'cookie'), undefined);
  assert.equal(wx.loginCalls, 2, 'the 401 led to a new login');
});

test('launch() with nothing stored: one login, then the user; ready() callbacks run after, in order', async () => {
  const { wx, session } = device();
  const seen = [];
  session.ready((user) => seen.push(['first', user]));
  session.ready((user) => seen.push(['second', user]));
  assert.equal(session.user, null);
  const launching = session.launch();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(seen, [], 'nothing runs before the user is known');

  const user = await launching;
  assert.deepEqual(user, EMPTY_PROFILE);
  assert.deepEqual(session.user, EMPTY_PROFILE);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(seen, [['first', user], ['second', user]]);
  assert.equal(wx.loginCalls, 1);
  assert.equal(wx.checkSessionCalls, 0, 'nothing stored: no checkSession');
  assert.deepEqual(wx.requests.map((r) => r.path), ['/oauth/login', '/user/info']);

  // Once known, ready() still calls back asynchronously.
  let late = null;
  session.ready((u) => { late = u; });
  assert.equal(late, null);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(late, EMPTY_PROFILE);
});

test('launch() with a stored live session and checkSession success: no login', async () => {
  const { wx, session } = device();
  await session.launch();
  assert.equal(wx.loginCalls, 1);
  const restarted = createSession({ baseURL: stack.service, wx });
  const user = await restarted.launch();
  assert.deepEqual(user, EMPTY_PROFILE);
  assert.equal(wx.loginCalls, 1, 'zero logins on the second launch');
  assert.equal(wx.checkSessionCalls, 1);
  assert.equal(wx.sent('/oauth/login').length, 1);
});

test('launch() with a stored session but checkSession failing: one login', async () => {
  const { wx, session } = device();
  await session.launch();
  wx.sessionAlive = false;
  const restarted = createSession({ baseURL: stack.service, wx });
  await restarted.launch();
  assert.equal(wx.checkSessionCalls, 1);
  assert.equal(wx.loginCalls, 2);
  assert.deepEqual(wx.requests.map((r) => r.path), ['/oauth/login', '/user/info', '/oauth/login', '/user/info']);
});

test('launch() with checkSession success but the session ended on the server: the 401 path logs in', async () => {
  const { wx, session } = device({ session: { useBearer: true } });
  const { token } = await session.login();
  await endSession(stack, token);
  const restarted = createSession({ baseURL: stack.service, wx, useBearer: true });
  assert.deepEqual(await restarted.launch(), EMPTY_PROFILE);
  assert.deepEqual(wx.requests.map((r) => `${r.path} ${r.statusCode}`),
    ['/oauth/login 200', '/user/info 401', '/oauth/login 200', '/user/info 200']);
});

test('launch() twice at once is one run', async () => {
  const { wx, session } = device();
  const a = session.launch();
  const b = session.launch();
  assert.equal(a, b);
  const [ua, ub] = await Promise.all([a, b]);
  assert.deepEqual(ua, ub);
  assert.equal(wx.loginCalls, 1);
  assert.deepEqual(wx.requests.map((r) => r.path), ['/oauth/login', '/user/info']);
  await session.launch(); // a later launch runs again (stored session: checkSession, info)
  assert.equal(wx.checkSessionCalls, 1);
  assert.equal(wx.loginCalls, 1);
});

test('concurrent login() calls share one wx.login and one POST /oauth/login', async () => {
  const { wx, session } = device();
  const results = await Promise.all([session.login(), session.login(), session.login()]);
  assert.equal(wx.loginCalls, 1);
  assert.equal(wx.sent('/oauth/login').length, 1);
  assert.deepEqual(results[0], results[2]);
  await session.login();
  assert.equal(wx.loginCalls, 2, 'after it settles, a later call starts a new login');
});

test('check() answers for a live session', async () => {
  const { session } = device();
  await session.login();
  assert.deepEqual(await session.check(), { session: true, sessionKeyValid: true });
});

test('errors carry the service slug: 404 not_found', async () => {
  const { session } = device();
  const error = await session.request({ url: '/no/such/endpoint' }).catch((e) => e);
  assert.ok(error instanceof ServiceError);
  assert.ok(error instanceof Error);
  assert.deepEqual([error.statusCode, error.code, error.error], [404, 1005, 'not_found']);
  assert.equal(error.message, 'There is no such endpoint.');
});

test('a network failure is network_error with statusCode 0', async () => {
  const [closed] = await freePorts(1);
  const wx = createWx(stack);
  const session = createSession({ baseURL: `http://127.0.0.1:${closed}`, wx });
  const error = await session.request({ url: '/user/info' }).catch((e) => e);
  assert.ok(error instanceof ServiceError);
  assert.deepEqual([error.statusCode, error.error, error.code], [0, 'network_error', null]);
  assert.match(error.message, /request:fail/);
  const login = await session.launch().catch((e) => e);
  assert.equal(login.error, 'network_error');
});
