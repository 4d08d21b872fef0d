'use strict';
// The profile page without the avatar: setProfile (PUT /user/profile, through
// WeChat's text check in the emulator), refresh() and deleteAccount(), against
// the real service.

const { test } = require('node:test');
const assert = require('node:assert/strict');

const createSession = require('../wx-session');
const { useStack, freePorts } = require('./stack');
const { createWx, endSession, setRules, clearRules, addFault, emulatorCalls } = require('./wx');

const { ServiceError } = createSession;

const stack = useStack();

async function loggedIn(session = {}) {
  const wx = createWx(stack);
  const client = createSession(Object.assign({ baseURL: stack.service, wx }, session));
  await client.launch();
  return { wx, session: client };
}

const EMPTY_PROFILE = {
  nickName: null, avatarUrl: null, gender: null, city: null, province: null, country: null,
  language: null, phoneNumber: null, purePhoneNumber: null, countryCode: null,
  avatarReview: null,
};

const header = (record, name) => {
  const key = Object.keys(record.header).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : record.header[key];
};

const trail = (wx, from = 0) => wx.requests.slice(from).map((r) => `${r.method} ${r.path} ${r.statusCode}`);

async function serverSays(token) {
  const response = await fetch(`${stack.service}/user/info`, { headers: { authorization: `Bearer ${token}` } });
  return response.status;
}

/** Runs fn with the emulator's text rules set, and clears them after. */
async function withRules(rules, fn) {
  await setRules(stack, rules);
  try {
    return await fn();
  } finally {
    await clearRules(stack);
  }
}

test('setProfile: the fields are stored, /user/info shows them, session.user and ready() follow; other keys are not sent', async () => {
  const { wx, session } = await loggedIn();
  const fields = { nickName: '小明🐱𠀀', gender: 1, city: 'Shenzhen', province: 'Guangdong', country: 'China' };
  // What a form's e.detail.value may hold besides: not sent.
  const profile = await session.setProfile(Object.assign({ avatarUrl: 'https://evil.example/x.jpg', note: 'hi' }, fields));

  assert.deepEqual(profile, Object.assign({}, EMPTY_PROFILE, fields));
  const [put] = wx.sent('/user/profile');
  assert.equal(put.method, 'PUT');
  assert.deepEqual(put.data, fields);
  assert.equal(put.statusCode, 200);
  assert.deepEqual(session.user, profile);
  assert.deepEqual(await session.request({ url: '/user/info' }), profile);
  const seen = await new Promise((resolve) => session.ready(resolve));
  assert.deepEqual(seen, profile);

  // WeChat checked the nickname and the region's texts (gender is no text).
  const checks = await emulatorCalls(stack, 'msg_sec_check');
  const contents = checks.map((call) => call.body && call.body.content);
  for (const text of [fields.nickName, fields.city, fields.province, fields.country]) {
    assert.ok(contents.includes(text), text);
  }

  // A subset changes only what it names; an empty region field clears it.
  const again = await session.setProfile({ city: '' });
  assert.equal(again.city, null);
  assert.equal(again.nickName, fields.nickName);
  assert.deepEqual(wx.sent('/user/profile')[1].data, { city: '' });
});

test('setProfile with a nickname WeChat rates risky: ServiceError content_risky with the field and label; nothing changes', () => withRules(
  { text: { risky: ['badword'], label: 20002 } },
  async () => {
    const { wx, session } = await loggedIn();
    await session.setProfile({ nickName: 'Fine name' });
    const before = session.user;

    const error = await session.setProfile({ nickName: 'a Badword here', city: 'Shenzhen' }).catch((e) => e);
    assert.ok(error instanceof ServiceError, String(error));
    assert.deepEqual([error.statusCode, error.code, error.error], [422, 6001, 'content_risky']);
    assert.deepEqual(error.data.data, { field: 'nickName', label: 20002 });
    assert.match(error.message, /nickName/);
    assert.equal(session.user, before, 'session.user is left as it was');
    assert.equal((await session.refresh()).nickName, 'Fine name');
    assert.equal(session.user.city, null, 'nothing of the refused change was stored');
    assert.deepEqual(wx.sent('/user/profile').map((r) => r.statusCode), [200, 422], 'a 422 is not retried');
  },
));

test('setProfile with a text WeChat wants reviewed: content_needs_review (the default policy), with the field', () => withRules(
  { text: { review: ['reviewme'], label: 20012 } },
  async () => {
    const { session } = await loggedIn();
    const error = await session.setProfile({ nickName: 'ok', province: 'Reviewme Province' }).catch((e) => e);
    assert.deepEqual([error.statusCode, error.code, error.error], [422, 6002, 'content_needs_review']);
    assert.deepEqual(error.data.data, { field: 'province', label: 20012 });
    assert.deepEqual(await session.refresh(), EMPTY_PROFILE);
  },
));

test('setProfile with a field the service refuses: invalid_field, and the message says which', async () => {
  const { session } = await loggedIn();
  const long = await session.setProfile({ nickName: 'x'.repeat(33) }).catch((e) => e);
  assert.deepEqual([long.statusCode, long.code, long.error], [400, 1002, 'invalid_field']);
  assert.match(long.message, /nickName/);
  const control = await session.setProfile({ city: 'Shen\u202Ezhen' }).catch((e) => e);
  assert.equal(control.error, 'invalid_field');
  const empty = await session.setProfile({ nickName: '' }).catch((e) => e); // WeChat cleared it on blur
  assert.equal(empty.error, 'invalid_field');
  const nothing = await session.setProfile({ other: 1 }).catch((e) => e);
  assert.equal(nothing.error, 'invalid_field');
});

for (const useBearer of [false, true]) {
  test(`setProfile after the session ended on the server (${useBearer ? 'bearer' : 'cookie'} mode): one re-login, one retry`, async () => {
    const { wx, session } = await loggedIn({ useBearer });
    const token = wx.getStorageSync('wx-session:token');
    await endSession(stack, token);
    const from = wx.requests.length;
    const logins = wx.loginCalls;

    const profile = await session.setProfile({ nickName: 'Back again' });
    assert.equal(profile.nickName, 'Back again');
    assert.deepEqual(trail(wx, from), ['PUT /user/profile 401', 'POST /oauth/login 200', 'PUT /user/profile 200']);
    assert.equal(wx.loginCalls - logins, 1);
    const fresh = wx.getStorageSync('wx-session:token');
    assert.notEqual(fresh, token);
    const retry = wx.requests.at(-1);
    assert.equal(useBearer ? header(retry, 'authorization') : header(retry, 'cookie'),
      useBearer ? `Bearer ${fresh}` : `sid=${fresh}`);
    assert.deepEqual(retry.data, { nickName: 'Back again' });
  });
}

test('setProfile when WeChat has not seen the user for two hours (61010): a fresh wx.login, one retry', async () => {
  const { wx, session } = await loggedIn();
  await addFault(stack, { endpoint: 'msg_sec_check', errcode: 61010, times: 1 });
  const from = wx.requests.length;
  const logins = wx.loginCalls;
  assert.equal((await session.setProfile({ nickName: 'Visitor' })).nickName, 'Visitor');
  assert.deepEqual(trail(wx, from), ['PUT /user/profile 409', 'POST /oauth/login 200', 'PUT /user/profile 200']);
  assert.equal(wx.loginCalls - logins, 1);
});

test('setProfile answered 61010 twice: wechat_visit_expired after one re-login, no loop', async () => {
  const { wx, session } = await loggedIn();
  await addFault(stack, { endpoint: 'msg_sec_check', errcode: 61010, times: 2 });
  const from = wx.requests.length;
  const error = await session.setProfile({ nickName: 'Visitor two' }).catch((e) => e);
  assert.deepEqual([error.statusCode, error.code, error.error], [409, 6003, 'wechat_visit_expired']);
  assert.deepEqual(trail(wx, from), ['PUT /user/profile 409', 'POST /oauth/login 200', 'PUT /user/profile 409']);
});

test('refresh(): GET /user/info, and session.user follows a change made elsewhere', async () => {
  const { wx, session } = await loggedIn();
  // The same mini program, another session object (say, a page's) on the same storage.
  const other = createSession({ baseURL: stack.service, wx });
  await other.setProfile({ nickName: 'Changed elsewhere' });
  assert.equal(session.user.nickName, null);
  const user = await session.refresh();
  assert.equal(user.nickName, 'Changed elsewhere');
  assert.deepEqual(session.user, user);
  assert.equal(wx.requests.at(-1).path, '/user/info');
});

for (const useBearer of [false, true]) {
  test(`deleteAccount (${useBearer ? 'bearer' : 'cookie'} mode): the account is gone, the session forgotten; the next call starts afresh`, async () => {
    const { wx, session } = await loggedIn({ useBearer });
    await session.setProfile({ nickName: 'Leaving' });
    const token = wx.getStorageSync('wx-session:token');

    assert.deepEqual(await session.deleteAccount(), { deleted: true });
    const [deletion] = wx.sent('/user', 'DELETE');
    assert.equal(deletion.statusCode, 200);
    assert.equal(useBearer ? header(deletion, 'authorization') : header(deletion, 'cookie'),
      useBearer ? `Bearer ${token}` : `sid=${token}`);
    assert.match(deletion.setCookie[0], /^sid=; .*Max-Age=0/, 'the service deleted the cookie');
    assert.deepEqual(wx.storageKeys(), [], 'no cookie, no token left');
    assert.equal(session.user, null);
    assert.equal(await serverSays(token), 401, '/user/info with the old token is 401');

    // The next call logs in to a fresh, empty account.
    assert.deepEqual(await session.request({ url: '/user/info' }), EMPTY_PROFILE);
    assert.equal(header(wx.sent('/user/info').at(-2), useBearer ? 'authorization' : 'cookie'), undefined);
  });
}

test('deleteAccount on a lapsed session: logs in once, then deletes', async () => {
  const { wx, session } = await loggedIn();
  await session.setProfile({ nickName: 'Lapsed' });
  await endSession(stack, wx.getStorageSync('wx-session:token'));
  const from = wx.requests.length;
  assert.deepEqual(await session.deleteAccount(), { deleted: true });
  assert.deepEqual(trail(wx, from), ['DELETE /user 401', 'POST /oauth/login 200', 'DELETE /user 200']);
  assert.deepEqual(wx.storageKeys(), []);
  assert.deepEqual(await session.launch(), EMPTY_PROFILE, 'the account with the name is gone');
});

test('deleteAccount that fails keeps the session: the account is still there', async () => {
  const [closed] = await freePorts(1);
  const wx = createWx(stack);
  wx.setStorageSync('wx-session:cookies', { sid: { value: 'x', expires: null } });
  wx.setStorageSync('wx-session:token', 'x');
  const offline = createSession({ baseURL: `http://127.0.0.1:${closed}`, wx });
  const error = await offline.deleteAccount().catch((e) => e);
  assert.equal(error.error, 'network_error');
  assert.deepEqual(wx.storageKeys().sort(), ['wx-session:cookies', 'wx-session:token']);
});
