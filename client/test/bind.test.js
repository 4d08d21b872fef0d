'use strict';
// bindInfo / bindPhone against the real service, including session_key rotation (409).

const { test } = require('node:test');
const assert = require('node:assert/strict');

const createSession = require('../wx-session');
const { useStack } = require('./stack');
const { createWx, configureEmulator, emulatorCalls } = require('./wx');

const { ServiceError } = createSession;

const stack = useStack();

async function loggedIn(options = {}) {
  const wx = createWx(stack, { cookieMode: options.cookieMode });
  const session = createSession(Object.assign({ baseURL: stack.service, wx }, options.session));
  await session.launch();
  return { wx, session };
}

const PROFILE = {
  nickName: '小明🐱𠀀',
  avatarUrl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132',
  gender: 1,
  city: 'Shenzhen',
  province: 'Guangdong',
  country: 'China',
  language: 'zh_CN',
};

for (const useBearer of [false, true]) {
  test(`bindInfo (${useBearer ? 'bearer' : 'cookie'} mode): the profile, emoji and 4-byte characters kept`, async () => {
    const { wx, session } = await loggedIn({ session: { useBearer } });
    const detail = await wx.encrypt(PROFILE);
    // What getUserProfile hands the page also has userInfo, errMsg...: only the sealed fields go.
    const profile = await session.bindInfo(Object.assign({ errMsg: 'getUserProfile:ok', userInfo: {} }, detail));
    for (const [key, value] of Object.entries(PROFILE)) assert.equal(profile[key], value, key);
    assert.deepEqual(wx.sent('/user/bindinfo')[0].data, detail);
    assert.deepEqual(session.user, profile);
    assert.deepEqual(await session.request({ url: '/user/info' }), profile);
  });
}

test('bindInfo without rawData/signature (getUserInfo-style detail) works too', async () => {
  const { wx, session } = await loggedIn();
  const { encryptedData, iv } = await wx.encrypt({ nickName: 'plain' });
  const profile = await session.bindInfo({ encryptedData, iv });
  assert.equal(profile.nickName, 'plain');
  assert.deepEqual(Object.keys(wx.sent('/user/bindinfo')[0].data), ['encryptedData', 'iv']);
});

test('bindPhone with the getPhoneNumber code', async () => {
  const { wx, session } = await loggedIn();
  const { code } = await wx.phoneCode('13912345678');
  const profile = await session.bindPhone({ code, errMsg: 'getPhoneNumber:ok' });
  assert.equal(profile.phoneNumber, '13912345678');
  assert.equal(profile.purePhoneNumber, '13912345678');
  assert.equal(profile.countryCode, '86');
  assert.deepEqual(wx.sent('/user/bindphone')[0].data, { code });
  assert.equal((await session.request({ url: '/user/info' })).phoneNumber, '13912345678');
});

test('bindPhone legacy: encryptedData and iv', async () => {
  const { wx, session } = await loggedIn();
  const detail = await wx.encrypt({ phoneNumber: '+86 13700001111', purePhoneNumber: '13700001111', countryCode: '86' });
  const profile = await session.bindPhone(Object.assign({ errMsg: 'getPhoneNumber:ok', cloudID: 'x' }, detail));
  assert.equal(profile.purePhoneNumber, '13700001111');
  assert.equal(profile.countryCode, '86');
  assert.deepEqual(wx.sent('/user/bindphone')[0].data, { encryptedData: detail.encryptedData, iv: detail.iv });
});

test('a bind on a lapsed session logs in once and retries', async () => {
  const { wx, session } = await loggedIn();
  session.clear(); // as if the cookie had expired
  const { code } = await wx.phoneCode('13800138000');
  const profile = await session.bindPhone({ code });
  assert.equal(profile.phoneNumber, '13800138000');
  assert.deepEqual(wx.requests.slice(2).map((r) => `${r.path} ${r.statusCode}`),
    ['/user/bindphone 401', '/oauth/login 200', '/user/bindphone 200']);
});

/**
 * The user's session_key rotates at WeChat without the service learning it
 * (a wx.login whose code never reaches the service), then the user's data is
 * sealed under the new key: the service answers 409 session_key_stale.
 */
async function staleSetup() {
  const { wx, session } = await loggedIn();
  await configureEmulator(stack, { rotate: 'always' });
  await wx.rotateAtWeChat();
  return { wx, session };
}

async function withRotation(fn) {
  try {
    return await fn();
  } finally {
    await configureEmulator(stack, { rotate: 'never' });
  }
}

test('409 session_key_stale without refresh: logs in again, then rejects for the page to ask again', () => withRotation(async () => {
  const { wx, session } = await staleSetup();
  const stale = await wx.encrypt(PROFILE);
  const loginsBefore = wx.loginCalls;
  const exchangesBefore = (await emulatorCalls(stack, 'jscode2session')).length;

  const error = await session.bindInfo(stale).catch((e) => e);
  assert.ok(error instanceof ServiceError);
  assert.deepEqual([error.statusCode, error.code, error.error], [409, 2002, 'session_key_stale']);
  assert.equal(wx.loginCalls - loginsBefore, 1, 'a fresh wx.login happened');
  assert.equal((await emulatorCalls(stack, 'jscode2session')).length - exchangesBefore, 1);
  assert.deepEqual(wx.requests.slice(2).map((r) => `${r.path} ${r.statusCode}`),
    ['/user/bindinfo 409', '/oauth/login 200'], 'the stale data was not sent again');

  // The page asks the user again: data sealed now opens, as the service learned the new key.
  const profile = await session.bindInfo(await wx.encrypt(PROFILE));
  assert.equal(profile.nickName, PROFILE.nickName);
}));

test('409 session_key_stale with refresh: one login, fresh data, one retry', () => withRotation(async () => {
  const { wx, session } = await staleSetup();
  const stale = await wx.encrypt(PROFILE);
  const loginsBefore = wx.loginCalls;
  let refreshes = 0;
  const profile = await session.bindInfo(stale, {
    refresh() {
      refreshes += 1;
      return wx.encrypt(PROFILE); // a new getUserProfile, after the login
    },
  });
  assert.equal(profile.nickName, PROFILE.nickName);
  assert.equal(refreshes, 1);
  assert.equal(wx.loginCalls - loginsBefore, 1, 'exactly one extra login');
  const binds = wx.sent('/user/bindinfo');
  assert.deepEqual(binds.map((r) => r.statusCode), [409, 200]);
  assert.notEqual(binds[1].data.encryptedData, stale.encryptedData, 'the retry sent fresh data');
  assert.equal((await session.request({ url: '/user/info' })).nickName, PROFILE.nickName);
}));

test('409 on a legacy bindPhone with refresh: same flow', () => withRotation(async () => {
  const { wx, session } = await staleSetup();
  const phone = { phoneNumber: '13600002222', purePhoneNumber: '13600002222', countryCode: '86' };
  const loginsBefore = wx.loginCalls;
  const profile = await session.bindPhone(await wx.encrypt(phone), { refresh: () => wx.encrypt(phone) });
  assert.equal(profile.phoneNumber, '13600002222');
  assert.equal(wx.loginCalls - loginsBefore, 1);
  assert.deepEqual(wx.sent('/user/bindphone').map((r) => r.statusCode), [409, 200]);
}));

test('409 twice (refresh gives stale data again): rejects after one retry, no loop', () => withRotation(async () => {
  const { wx, session } = await staleSetup();
  const loginsBefore = wx.loginCalls;
  const error = await session.bindInfo(await wx.encrypt(PROFILE), {
    async refresh() {
      await wx.rotateAtWeChat(); // the key moves on again before the data is sealed
      return wx.encrypt(PROFILE);
    },
  }).catch((e) => e);
  assert.equal(error.error, 'session_key_stale');
  assert.equal(wx.loginCalls - loginsBefore, 1);
  assert.deepEqual(wx.sent('/user/bindinfo').map((r) => r.statusCode), [409, 409]);
}));

test('409 with a refresh that fails (no tap gesture): still session_key_stale, refreshError attached', () => withRotation(async () => {
  const { wx, session } = await staleSetup();
  const loginsBefore = wx.loginCalls;
  const refusal = { errMsg: 'getUserProfile:fail can only be invoked by user TAP gesture.' };
  const error = await session.bindInfo(await wx.encrypt(PROFILE), { refresh: () => Promise.reject(refusal) })
    .catch((e) => e);
  assert.ok(error instanceof ServiceError);
  assert.equal(error.error, 'session_key_stale');
  assert.equal(error.refreshError, refusal);
  assert.equal(wx.loginCalls - loginsBefore, 1);
  assert.deepEqual(wx.sent('/user/bindinfo').map((r) => r.statusCode), [409]);
  // The user taps again: data sealed after the login opens.
  assert.equal((await session.bindInfo(await wx.encrypt(PROFILE))).nickName, PROFILE.nickName);
}));

test('errors carry the slug: garbage encryptedData is 400 malformed_encrypted_data', async () => {
  const { wx, session } = await loggedIn();
  const error = await session.bindInfo({ encryptedData: 'not base64 at all!', iv: 'AAAAAAAAAAAAAAAAAAAAAA==' }).catch((e) => e);
  assert.ok(error instanceof ServiceError);
  assert.equal(error.statusCode, 400);
  assert.equal(error.code, 4001);
  assert.equal(error.error, 'malformed_encrypted_data');
  assert.equal(error.message, 'encryptedData is not base64 of whole AES blocks.');
  assert.deepEqual(error.data, { code: 4001, error: 'malformed_encrypted_data', message: error.message });
  assert.equal(wx.sent('/user/bindinfo').length, 1, 'a 400 is not retried');
});

test('errors carry the slug: a phone code WeChat rejects is phone_code_invalid', async () => {
  const { session } = await loggedIn();
  const error = await session.bindPhone({ code: 'never-issued' }).catch((e) => e);
  assert.deepEqual([error.statusCode, error.error], [400, 'phone_code_invalid']);
});

test('a detail without data (the user said no) rejects as invalid_detail, nothing sent', async () => {
  const { wx, session } = await loggedIn();
  const sent = wx.requests.length;
  const info = await session.bindInfo({ errMsg: 'getUserProfile:fail auth deny' }).catch((e) => e);
  assert.deepEqual([info.statusCode, info.error, info.message], [0, 'invalid_detail', 'getUserProfile:fail auth deny']);
  const phone = await session.bindPhone({ errMsg: 'getPhoneNumber:fail user deny' }).catch((e) => e);
  assert.equal(phone.error, 'invalid_detail');
  assert.equal(wx.requests.length, sent);
});
