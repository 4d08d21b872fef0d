'use strict';
// The cookie jar and the request plumbing, against a scripted wx (no server).

const test = require('node:test');
const assert = require('node:assert/strict');

const createSession = require('../wx-session');

const { ServiceError } = createSession;
const START = Date.UTC(2030, 0, 1, 12, 0, 0);

/**
 * A wx whose request answers from `respond(opts)` -> {statusCode, data, header?, cookies?}
 * (default: {"code":0,"data":{}}), with in-memory storage and a counted wx.login.
 */
function scriptedWx(respond) {
  const storage = new Map();
  const wx = {
    sent: [],
    logins: 0,
    respond: respond || (() => ({ statusCode: 200, data: { code: 0, data: {} } })),
    setStorageSync: (key, value) => storage.set(key, JSON.parse(JSON.stringify(value))),
    getStorageSync: (key) => (storage.has(key) ? JSON.parse(JSON.stringify(storage.get(key))) : ''),
    removeStorageSync: (key) => storage.delete(key),
    storage,
    request(opts) {
      wx.sent.push({ url: opts.url, method: opts.method, header: opts.header, data: opts.data, opts });
      const res = wx.respond(opts);
      setImmediate(() => (res === 'fail' ? opts.fail({ errMsg: 'request:fail' }) : opts.success(res)));
    },
    login(opts) {
      wx.logins += 1;
      setImmediate(() => opts.success({ code: `code-${wx.logins}`, errMsg: 'login:ok' }));
    },
  };
  return wx;
}

function withClock() {
  const clock = { now: START };
  clock.fn = () => clock.now;
  return clock;
}

/** A session whose first request gets `header` (and cookies) as its reply. */
async function afterReply(reply, options = {}) {
  const clock = options.clock || withClock();
  let first = true;
  const wx = scriptedWx(() => {
    if (first) {
      first = false;
      return Object.assign({ statusCode: 200, data: { code: 0, data: {} } }, reply);
    }
    return { statusCode: 200, data: { code: 0, data: {} } };
  });
  const session = createSession(Object.assign({ baseURL: 'https://svc.test', wx, now: clock.fn }, options.session));
  await session.request({ url: '/first' });
  return { wx, session, clock };
}

async function cookieSent(session, wx) {
  await session.request({ url: '/next' });
  const header = wx.sent[wx.sent.length - 1].header;
  const names = Object.keys(header).filter((name) => name.toLowerCase() === 'cookie');
  assert.ok(names.length <= 1, 'at most one Cookie header');
  return names.length ? header[names[0]] : undefined;
}

const LATER = 'Thu, 01 Jan 2099 00:00:00 GMT';
const PAST = 'Thu, 01 Jan 1970 00:00:00 GMT';

test('several cookies in one joined header, Expires commas and all', async () => {
  const { wx, session } = await afterReply({
    header: {
      'Set-Cookie': `sid=abc; Expires=${LATER}; Max-Age=600; HttpOnly; Path=/; SameSite=Lax, ` +
        `lang=zh_CN; Expires=${LATER}; Path=/, theme=dark`,
    },
  });
  assert.equal(await cookieSent(session, wx), 'sid=abc; lang=zh_CN; theme=dark');
});

for (const name of ['Set-Cookie', 'set-cookie', 'SET-COOKIE', 'sEt-CoOkIe']) {
  test(`the header name in any case: ${name}`, async () => {
    const { wx, session } = await afterReply({ header: { [name]: 'sid=abc; Path=/' } });
    assert.equal(await cookieSent(session, wx), 'sid=abc');
  });
}

test('an array of Set-Cookie values', async () => {
  const { wx, session } = await afterReply({
    header: { 'Set-Cookie': [`sid=abc; Expires=${LATER}; Path=/`, 'lang=en; Max-Age=60'] },
  });
  assert.equal(await cookieSent(session, wx), 'sid=abc; lang=en');
});

test('res.cookies (newer base libraries) is used when present', async () => {
  const { wx, session } = await afterReply({
    header: { 'Content-Type': 'application/json' },
    cookies: [`sid=from-cookies; Expires=${LATER}; Path=/`, 'b=2'],
  });
  assert.equal(await cookieSent(session, wx), 'sid=from-cookies; b=2');
});

test('res.cookies wins over a Set-Cookie header carrying the same', async () => {
  const { wx, session } = await afterReply({
    header: { 'Set-Cookie': 'sid=from-header' },
    cookies: ['sid=from-cookies'],
  });
  assert.equal(await cookieSent(session, wx), 'sid=from-cookies');
});

test('an empty res.cookies falls back to the header', async () => {
  const { wx, session } = await afterReply({ header: { 'set-cookie': 'sid=abc' }, cookies: [] });
  assert.equal(await cookieSent(session, wx), 'sid=abc');
});

test('values containing "=" stay intact, and are not unescaped', async () => {
  const { wx, session } = await afterReply({
    header: { 'Set-Cookie': ['tok=YWJj==; Path=/', 'data=a=b=c; Max-Age=60', 'esc=%7B%22a%22%3A1%7D'] },
  });
  assert.equal(await cookieSent(session, wx), 'tok=YWJj==; data=a=b=c; esc=%7B%22a%22%3A1%7D');
});

test('a later Set-Cookie replaces a cookie of the same name', async () => {
  const { wx, session } = await afterReply({ header: { 'Set-Cookie': ['sid=old', 'sid=new; Path=/'] } });
  assert.equal(await cookieSent(session, wx), 'sid=new');
});

test('Max-Age is honoured (seconds, against the injected clock)', async () => {
  const { wx, session, clock } = await afterReply({ header: { 'Set-Cookie': 'sid=abc; Max-Age=60' } });
  clock.now = START + 59 * 1000;
  assert.equal(await cookieSent(session, wx), 'sid=abc');
  clock.now = START + 60 * 1000;
  assert.equal(await cookieSent(session, wx), undefined);
  assert.deepEqual(wx.getStorageSync('wx-session:cookies'), {}, 'the expired cookie is dropped from storage');
});

test('Expires is honoured (an HTTP date)', async () => {
  const expires = new Date(START + 100 * 1000).toUTCString();
  const { wx, session, clock } = await afterReply({ header: { 'Set-Cookie': `sid=abc; Expires=${expires}; Path=/` } });
  clock.now = START + 99 * 1000;
  assert.equal(await cookieSent(session, wx), 'sid=abc');
  clock.now = START + 101 * 1000;
  assert.equal(await cookieSent(session, wx), undefined);
});

test('the old Netscape date form (01-Jan-2099) is read too', async () => {
  const { wx, session, clock } = await afterReply({
    header: { 'Set-Cookie': 'sid=abc; expires=Wednesday, 01-Jan-2031 00:00:00 GMT' },
  });
  clock.now = Date.UTC(2030, 11, 31, 23, 59, 59);
  assert.equal(await cookieSent(session, wx), 'sid=abc');
  clock.now = Date.UTC(2031, 0, 1, 0, 0, 0);
  assert.equal(await cookieSent(session, wx), undefined);
});

test('Max-Age wins over Expires, both ways', async () => {
  const kept = await afterReply({ header: { 'Set-Cookie': `sid=abc; Expires=${PAST}; Max-Age=60` } });
  assert.equal(await cookieSent(kept.session, kept.wx), 'sid=abc');
  const gone = await afterReply({ header: { 'Set-Cookie': `a=1, sid=abc; Expires=${LATER}; Max-Age=0` } });
  assert.equal(await cookieSent(gone.session, gone.wx), 'a=1');
});

for (const [label, deletion] of [
  ['Max-Age=0', 'sid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/; SameSite=Lax'],
  ['a negative Max-Age', 'sid=x; Max-Age=-1'],
  ['Expires in the past', `sid=deleted; Expires=${PAST}; Path=/`],
]) {
  test(`deletion by ${label}`, async () => {
    const clock = withClock();
    const replies = [
      { statusCode: 200, data: { code: 0, data: {} }, header: { 'Set-Cookie': ['sid=abc; Max-Age=600', 'keep=1'] } },
      { statusCode: 200, data: { code: 0, data: {} }, header: { 'Set-Cookie': deletion } },
    ];
    const wx = scriptedWx(() => replies.shift() || { statusCode: 200, data: { code: 0, data: {} } });
    const session = createSession({ baseURL: 'https://svc.test', wx, now: clock.fn });
    await session.request({ url: '/a' });
    await session.request({ url: '/b' });
    assert.equal(wx.sent[1].header.Cookie, 'sid=abc; keep=1');
    assert.equal(await cookieSent(session, wx), 'keep=1');
    assert.deepEqual(Object.keys(wx.getStorageSync('wx-session:cookies')), ['keep']);
  });
}

test('no Cookie header at all when there are no cookies', async () => {
  const wx = scriptedWx();
  const session = createSession({ baseURL: 'https://svc.test', wx });
  await session.request({ url: '/x', header: { 'X-Trace': '1' } });
  assert.deepEqual(wx.sent[0].header, { 'X-Trace': '1', 'content-type': 'application/json' });
});

test('cookies from error replies are kept too', async () => {
  const wx = scriptedWx(() => ({
    statusCode: 400,
    data: { code: 1004, error: 'bad_request', message: 'no' },
    header: { 'Set-Cookie': 'sid=abc' },
  }));
  const session = createSession({ baseURL: 'https://svc.test', wx });
  await assert.rejects(session.request({ url: '/x' }), { error: 'bad_request', statusCode: 400 });
  assert.deepEqual(wx.getStorageSync('wx-session:cookies'), { sid: { value: 'abc', expires: null } });
});

test('cookies persist through wx storage under <storageKey>:cookies, expired ones dropped on read', async () => {
  const clock = withClock();
  const { wx } = await afterReply(
    { header: { 'Set-Cookie': ['sid=abc; Max-Age=600', 'short=1; Max-Age=10'] } },
    { clock, session: { storageKey: 'app' } },
  );
  const stored = wx.getStorageSync('app:cookies');
  assert.deepEqual(stored, {
    sid: { value: 'abc', expires: START + 600 * 1000 },
    short: { value: '1', expires: START + 10 * 1000 },
  });
  clock.now = START + 20 * 1000;
  const again = createSession({ baseURL: 'https://svc.test', wx, now: clock.fn, storageKey: 'app' });
  assert.equal(await cookieSent(again, wx), 'sid=abc');
  assert.deepEqual(Object.keys(wx.getStorageSync('app:cookies')), ['sid']);
});

test('bearer mode sends Authorization with the stored token and never a Cookie', async () => {
  const wx = scriptedWx((opts) => {
    if (opts.url.endsWith('/oauth/login')) {
      return {
        statusCode: 200,
        data: { code: 0, data: { token: 'T0K3N', expiresIn: 600 } },
        header: { 'Set-Cookie': 'sid=T0K3N; Max-Age=600; Path=/' },
      };
    }
    return { statusCode: 200, data: { code: 0, data: { ok: true } } };
  });
  const session = createSession({ baseURL: 'https://svc.test', wx, useBearer: true });
  await session.request({ url: '/before' });
  assert.equal(wx.sent[0].header.Authorization, undefined, 'no token yet: no Authorization');
  assert.deepEqual(await session.login(), { token: 'T0K3N', expiresIn: 600 });
  assert.equal(wx.getStorageSync('wx-session:token'), 'T0K3N');
  await session.request({ url: '/after', header: { Cookie: 'sneaky=1' } });
  const header = wx.sent[wx.sent.length - 1].header;
  assert.equal(header.Authorization, 'Bearer T0K3N');
  assert.ok(!Object.keys(header).some((name) => name.toLowerCase() === 'cookie'), JSON.stringify(header));
});

test('cookie mode sends the cookie, not Authorization, and caller headers are merged', async () => {
  const { wx, session } = await afterReply({ header: { 'Set-Cookie': 'sid=abc' } });
  await session.request({ url: '/x', method: 'post', data: { a: 1 }, header: { 'X-Trace': '1', 'Content-Type': 'text/plain' } });
  const sent = wx.sent[wx.sent.length - 1];
  assert.deepEqual(sent.header, { 'X-Trace': '1', 'Content-Type': 'text/plain', Cookie: 'sid=abc' });
  assert.equal(sent.method, 'POST');
  assert.deepEqual(sent.data, { a: 1 });
  assert.equal(sent.url, 'https://svc.test/x');
  assert.equal(sent.opts.dataType, 'json');
  assert.equal(sent.opts.timeout, 10000);
});

test('request resolves to data and rejects with a ServiceError carrying the reply', async () => {
  const replies = [
    { statusCode: 200, data: { code: 0, data: { n: 1 } } },
    { statusCode: 429, data: { code: 1008, error: 'rate_limited', message: 'slow down' }, header: { 'Retry-After': '60' } },
    { statusCode: 502, data: '<html>bad gateway</html>' },
    'fail',
  ];
  const wx = scriptedWx(() => replies.shift());
  const session = createSession({ baseURL: 'https://svc.test/', wx, timeout: 1234 });
  assert.deepEqual(await session.request({ url: 'a' }), { n: 1 });
  assert.equal(wx.sent[0].url, 'https://svc.test/a');
  assert.equal(wx.sent[0].opts.timeout, 1234);
  const limited = await session.request({ url: '/b' }).catch((e) => e);
  assert.ok(limited instanceof ServiceError);
  assert.ok(limited instanceof Error);
  assert.equal(limited.name, 'ServiceError');
  assert.deepEqual(
    [limited.statusCode, limited.code, limited.error, limited.message, limited.header['Retry-After']],
    [429, 1008, 'rate_limited', 'slow down', '60'],
  );
  assert.deepEqual(limited.data, { code: 1008, error: 'rate_limited', message: 'slow down' });
  assert.ok(limited.stack.includes('ServiceError'));
  const html = await session.request({ url: '/c' }).catch((e) => e);
  assert.deepEqual([html.statusCode, html.error, html.code], [502, 'bad_response', null]);
  const offline = await session.request({ url: '/d' }).catch((e) => e);
  assert.deepEqual([offline.statusCode, offline.error], [0, 'network_error']);
});

test('login is single-flight, and a later call starts a new one', async () => {
  const wx = scriptedWx((opts) => ({
    statusCode: 200,
    data: { code: 0, data: { token: `tok-for-${opts.data.code}`, expiresIn: 60 } },
  }));
  const session = createSession({ baseURL: 'https://svc.test', wx });
  const calls = [session.login(), session.login(), session.login()];
  assert.equal(calls[0], calls[1]);
  const results = await Promise.all(calls);
  assert.equal(wx.logins, 1);
  assert.equal(wx.sent.length, 1);
  assert.deepEqual(wx.sent[0].data, { code: 'code-1', type: 'wxapp' });
  assert.deepEqual(results[2], { token: 'tok-for-code-1', expiresIn: 60 });
  await session.login();
  assert.equal(wx.logins, 2);
  assert.equal(wx.getStorageSync('wx-session:token'), 'tok-for-code-2');
});

test('a 401 logs in once and retries once; a second 401 rejects', async () => {
  let live = null;
  const wx = scriptedWx((opts) => {
    if (opts.url.endsWith('/oauth/login')) {
      return { statusCode: 200, data: { code: 0, data: { token: 'x', expiresIn: 60 } }, header: { 'Set-Cookie': `sid=${opts.data.code}` } };
    }
    if (live && opts.header.Cookie === `sid=${live}`) return { statusCode: 200, data: { code: 0, data: 'ok' } };
    return { statusCode: 401, data: { code: 2001, error: 'unauthorized', message: 'log in' } };
  });
  const session = createSession({ baseURL: 'https://svc.test', wx });
  live = 'code-1';
  assert.equal(await session.request({ url: '/x' }), 'ok');
  assert.deepEqual(wx.sent.map((s) => s.url.slice(16)), ['/x', '/oauth/login', '/x']);
  live = 'never';
  const error = await session.request({ url: '/y' }).catch((e) => e);
  assert.deepEqual([error.statusCode, error.error], [401, 'unauthorized']);
  assert.deepEqual(wx.sent.slice(3).map((s) => s.url.slice(16)), ['/y', '/oauth/login', '/y']);
});

test('createSession requires a baseURL and a wx', () => {
  assert.throws(() => createSession({ wx: scriptedWx() }), /baseURL/);
  assert.throws(() => createSession({ baseURL: 'https://svc.test' }), /wx/);
});

test('the session is never sent to a host outside baseURL', async () => {
  const wx = scriptedWx();
  const session = createSession({ baseURL: 'https://svc.test', wx });
  for (const url of ['https://evil.test/steal', 'https://svc.test.evil.test/x', '//evil.test/x',
    'http://svc.test/x', 'javascript:alert(1)']) {
    await assert.rejects(session.request({ url }), (err) => err instanceof ServiceError &&
      err.error === 'invalid_url' && err.statusCode === 0);
  }
  assert.equal(wx.sent.length, 0);
  await session.request({ url: 'https://svc.test/user/info' });
  assert.equal(wx.sent.length, 1);
});
