'use strict';
// session.request(): wx.request options passed through, and the request task
// (promise.task, promise.abort()), against the real service through the
// simulated wx, plus a wx that returns no task (old base libraries).

const { test } = require('node:test');
const assert = require('node:assert/strict');

const createSession = require('../wx-session');
const { useStack } = require('./stack');
const { createWx, endSession } = require('./wx');

const { ServiceError } = createSession;

const stack = useStack();

function device(session = {}) {
  const wx = createWx(stack);
  return { wx, session: createSession(Object.assign({ baseURL: stack.service, wx }, session)) };
}

const EMPTY_PROFILE = {
  nickName: null, avatarUrl: null, gender: null, city: null, province: null, country: null,
  language: null, phoneNumber: null, purePhoneNumber: null, countryCode: null,
  avatarReview: null,
};

// wx.request options the client has no business with: they must arrive as given.
const PASSED = {
  enableHttp2: true,
  enableQuic: false,
  enableCache: true,
  enableHttpDNS: false,
  enableChunked: false,
  enableProfile: false,
  forceCellularNetwork: false,
  useHighPerformanceMode: true,
  responseType: 'text',
  dataType: 'text',
  timeout: 4321,
  someFutureOption: { nested: [1, 2] },
};

/** A promise and the function that resolves it: a condition tests can wait on. */
function signal() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

/** Holds wx.request replies to `path` before the client sees them, until released. */
function holdReplies(wx, path) {
  const arrived = signal();
  const gate = signal();
  wx.afterResponse = (record) => {
    if (record.path !== path) return undefined;
    arrived.resolve(record);
    return gate.promise;
  };
  return { arrived: arrived.promise, release: () => gate.resolve() };
}

async function isAborted(promise) {
  const error = await promise.then(() => assert.fail('resolved'), (e) => e);
  assert.ok(error instanceof ServiceError, String(error));
  assert.deepEqual([error.statusCode, error.code, error.error], [0, null, 'aborted']);
  assert.equal(error.message, 'The request was aborted.');
}

for (const useBearer of [false, true]) {
  test(`${useBearer ? 'bearer' : 'cookie'} mode: every other wx.request option goes through as given; callbacks and the session's header stay the client's`, async () => {
    const { wx, session } = device({ useBearer });
    const { token } = await session.login();
    const called = [];
    const mine = {
      success: () => called.push('success'),
      fail: () => called.push('fail'),
      complete: () => called.push('complete'),
    };
    const user = await session.request(Object.assign({
      url: '/user/info',
      method: 'get',
      // The headers the session manages, forged: the session's win.
      header: Object.assign({ 'X-Trace': 't-1', 'x-wx-appid': 'wxforged' },
        useBearer ? { authorization: 'Bearer forged' } : { cookie: 'sid=forged' }),
    }, mine, PASSED));
    // dataType 'text': wx hands over the raw text, and the client still reads the service's JSON.
    assert.deepEqual(user, EMPTY_PROFILE);

    const sent = wx.sent('/user/info').at(-1);
    for (const [name, value] of Object.entries(PASSED)) {
      assert.equal(sent.options[name], value, name);
    }
    assert.equal(sent.options.url, `${stack.service}/user/info`);
    assert.equal(sent.options.method, 'GET');
    for (const name of ['success', 'fail', 'complete']) {
      assert.notEqual(sent.options[name], mine[name], `the caller's ${name} is not given to wx.request`);
    }
    assert.equal(sent.options.complete, undefined);
    assert.deepEqual(called, [], "the caller's callbacks never run: the promise stands for them");
    assert.deepEqual(sent.header, Object.assign({ 'X-Trace': 't-1', 'content-type': 'application/json' },
      useBearer ? { Authorization: `Bearer ${token}` } : { Cookie: `sid=${token}` },
      { 'X-WX-AppId': wx.appId }));
  });
}

test('a call without options of its own gets exactly what it got before: the session timeout, dataType json', async () => {
  const { wx, session } = device({ timeout: 2345 });
  await session.login();
  await session.request({ url: '/user/info' });
  await session.request({ url: '/user/info', data: { a: '1' }, timeout: undefined, dataType: undefined });
  const [plain, undefinedOnes] = wx.sent('/user/info');
  assert.deepEqual(Object.keys(plain.options).sort(), ['dataType', 'fail', 'header', 'method', 'success', 'timeout', 'url']);
  assert.deepEqual([plain.options.timeout, plain.options.dataType], [2345, 'json']);
  assert.deepEqual([undefinedOnes.options.timeout, undefinedOnes.options.dataType, undefinedOnes.options.data],
    [2345, 'json', { a: '1' }]);
});

test('the retry after a re-login carries the same options, and promise.task follows it', async () => {
  const { wx, session } = device();
  const { token } = await session.login();
  await endSession(stack, token);

  const current = [];
  wx.afterResponse = (record) => {
    if (record.path === '/user/info') current.push(promise.task === record.task);
  };
  const promise = session.request(Object.assign({ url: '/user/info' }, PASSED));
  const first = wx.requests.at(-1);
  assert.equal(promise.task, first.task, 'the task is there as soon as request() returns');
  assert.equal(typeof promise.abort, 'function');

  assert.deepEqual(await promise, EMPTY_PROFILE);
  const infos = wx.sent('/user/info');
  assert.deepEqual(infos.map((r) => r.statusCode), [401, 200]);
  assert.deepEqual(current, [true, true], 'each time a reply came, promise.task was its request');
  assert.equal(promise.task, infos[1].task);
  assert.notEqual(infos[0].task, infos[1].task);
  for (const [name, value] of Object.entries(PASSED)) {
    assert.equal(infos[1].options[name], value, name);
  }
});

test('abort() while the request is in flight: the promise rejects with aborted, wx calls fail, nothing is retried', async () => {
  const { wx, session } = device();
  await session.login();
  const held = holdReplies(wx, '/user/info');
  const promise = session.request({ url: '/user/info' });
  const record = await held.arrived;
  assert.equal(promise.task, record.task);

  promise.abort();
  await isAborted(promise);
  assert.equal(record.aborted, true, 'the RequestTask was aborted');
  held.release();
  assert.equal(await record.delivered, 'fail', 'an aborted wx.request calls fail, not success');
  promise.abort(); // again: nothing happens
  assert.deepEqual(wx.requests.map((r) => r.path), ['/oauth/login', '/user/info']);
  assert.equal(wx.loginCalls, 1);
});

test('abort() right after request(): the fetch is cut and the promise rejects with aborted', async () => {
  const { wx, session } = device();
  const promise = session.request({ url: '/user/info' });
  promise.abort();
  await isAborted(promise);
  const [record] = wx.requests;
  assert.equal(await record.delivered, 'fail');
  assert.equal(record.aborted, true);
  assert.equal(wx.requests.length, 1, 'no login, no retry');
  assert.equal(wx.loginCalls, 0);
});

test('abort() during the re-login: rejects at once, the shared login goes on for the other calls, no retry', async () => {
  const { wx, session } = device();
  const { token } = await session.login();
  await endSession(stack, token);
  const held = holdReplies(wx, '/oauth/login');

  const aborted = session.request({ url: '/user/info' });
  const other = session.request({ url: '/user/info' });
  const login = await held.arrived;
  // Both calls have had their 401 and wait on the one re-login, held here.
  assert.deepEqual(await Promise.all(wx.sent('/user/info').map((r) => r.delivered)), ['success', 'success']);
  const firstTask = aborted.task;

  aborted.abort();
  await isAborted(aborted); // while the login is still held
  assert.equal(login.aborted, false, 'the shared login was not aborted');

  held.release();
  assert.deepEqual(await other, EMPTY_PROFILE);
  assert.equal(aborted.task, firstTask, 'the aborted call was not sent again');
  assert.deepEqual(wx.sent('/user/info').map((r) => r.statusCode), [401, 401, 200]);
  assert.equal(wx.sent('/oauth/login').length, 2);
  assert.equal(wx.loginCalls, 2);
});

test('abort() after the promise settled changes nothing', async () => {
  const { wx, session } = device();
  await session.login();
  const promise = session.request({ url: '/user/info' });
  assert.deepEqual(await promise, EMPTY_PROFILE);
  promise.abort();
  assert.deepEqual(await promise, EMPTY_PROFILE);
  assert.equal(wx.requests.at(-1).aborted, false);

  const refused = session.request({ url: '/no/such/endpoint' });
  const error = await refused.catch((e) => e);
  refused.abort();
  assert.equal((await refused.catch((e) => e)).error, 'not_found');
  assert.equal(error.error, 'not_found');
});

test('a wx.request that returns no task (old base libraries): task is null, abort() still rejects and a late reply is ignored', async () => {
  const calls = [];
  const storage = new Map();
  const wx = {
    setStorageSync: (key, value) => storage.set(key, value),
    getStorageSync: (key) => (storage.has(key) ? storage.get(key) : ''),
    removeStorageSync: (key) => storage.delete(key),
    login: (opts) => setImmediate(() => opts.success({ code: 'c' })),
    request: (opts) => { calls.push(opts); },
  };
  const session = createSession({ baseURL: 'https://svc.test', wx });
  const promise = session.request({ url: '/x' });
  assert.equal(promise.task, null);
  promise.abort();
  calls[0].success({ statusCode: 200, header: { 'Set-Cookie': 'sid=late' }, data: { code: 0, data: 'late' } });
  await isAborted(promise);
  assert.deepEqual(storage.get('wx-session:cookies'), { sid: { value: 'late', expires: null } },
    'a reply that did come still sets its cookies, as the server did');

  const outside = session.request({ url: 'https://elsewhere.test/x' });
  assert.equal(outside.task, null, 'no wx.request for a URL outside baseURL');
  assert.equal((await outside.catch((e) => e)).error, 'invalid_url');
  assert.equal(calls.length, 1);
});
