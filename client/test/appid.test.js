'use strict';
// X-WX-AppId: every call carries the mini program's appid (from
// wx.getAccountInfoSync, read once, or the appId option), or none at all.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const createSession = require('../wx-session');
const { useStack } = require('./stack');
const { writePng } = require('./images');
const { DEFAULT_APPID, createWx, endSession } = require('./wx');

const stack = useStack();

const appHeaders = (record) => Object.keys(record.header).filter((name) => name.toLowerCase() === 'x-wx-appid');

let pictures = 0;

/** Every kind of call the client makes: request, login, launch, binds, profile, upload, logout, delete. */
async function everyCall(wx, session) {
  await session.launch(); // login + GET /user/info
  await session.request({ url: '/user/info' });
  await session.check();
  await session.bindPhone(await wx.phoneCode('13912345678'));
  await session.setProfile({ nickName: 'Every call' });
  await session.uploadAvatar(writePng(stack.dir, `appid-${++pictures}.png`, [pictures, 2, 3]));
  await session.refresh();
  // A 401 and its re-login.
  await endSession(stack, wx.getStorageSync('wx-session:token'));
  await session.request({ url: '/user/info' });
  await session.logout();
  await session.login();
  await session.deleteAccount();
  const kinds = new Set(wx.requests.map((r) => `${r.kind} ${r.method} ${r.path}`));
  for (const expected of ['request POST /oauth/login', 'request GET /user/info', 'request GET /oauth/check',
    'request POST /user/bindphone', 'request PUT /user/profile', 'uploadFile POST /user/avatar',
    'request POST /oauth/logout', 'request DELETE /user']) {
    assert.ok(kinds.has(expected), expected);
  }
  assert.ok(wx.requests.some((r) => r.statusCode === 401), 'a 401 was among them');
}

for (const useBearer of [false, true]) {
  test(`${useBearer ? 'bearer' : 'cookie'} mode: every call carries X-WX-AppId from wx.getAccountInfoSync, read once`, async () => {
    const wx = createWx(stack);
    assert.equal(wx.appId, DEFAULT_APPID);
    const session = createSession({ baseURL: stack.service, wx, useBearer });
    assert.equal(wx.accountInfoCalls, 1, 'read when the session is created');
    await everyCall(wx, session);
    for (const record of wx.requests) {
      assert.deepEqual(appHeaders(record), ['X-WX-AppId'], `${record.method} ${record.path}`);
      assert.equal(record.header['X-WX-AppId'], DEFAULT_APPID);
    }
    assert.equal(wx.accountInfoCalls, 1, 'and never again');
  });
}

test('the appId option overrides getAccountInfoSync, which is then not called', async () => {
  const wx = createWx(stack, { appId: 'wxfeedfacefeedface' });
  const session = createSession({ baseURL: stack.service, wx, appId: DEFAULT_APPID });
  await everyCall(wx, session);
  for (const record of wx.requests) {
    assert.equal(record.header['X-WX-AppId'], DEFAULT_APPID, `${record.method} ${record.path}`);
  }
  assert.equal(wx.accountInfoCalls, 0);
});

test('the header reaches the service: an appid it does not serve is 400 unknown_app', async () => {
  const wx = createWx(stack, { appId: 'wx00000000000000ff' });
  const session = createSession({ baseURL: stack.service, wx });
  const error = await session.launch().catch((e) => e);
  assert.deepEqual([error.statusCode, error.code, error.error], [400, 1009, 'unknown_app']);
  assert.equal(wx.requests[0].header['X-WX-AppId'], 'wx00000000000000ff');
});

test('without getAccountInfoSync (base library < 2.2.2) and without the option: no X-WX-AppId, the default app', async () => {
  const wx = createWx(stack, { appId: null });
  assert.equal(wx.getAccountInfoSync, undefined);
  const session = createSession({ baseURL: stack.service, wx });
  await everyCall(wx, session);
  for (const record of wx.requests) {
    assert.deepEqual(appHeaders(record), [], `${record.method} ${record.path}`);
  }
});

test('a getAccountInfoSync that throws or gives no appid means no header; a caller\'s own X-WX-AppId then goes through', async () => {
  for (const broken of [() => { throw new Error('not supported'); }, () => ({}), () => ({ miniProgram: { appId: '' } })]) {
    const wx = createWx(stack, { appId: null });
    wx.getAccountInfoSync = broken;
    const session = createSession({ baseURL: stack.service, wx });
    await session.launch();
    for (const record of wx.requests) assert.deepEqual(appHeaders(record), []);
    await session.request({ url: '/user/info', header: { 'X-WX-AppId': DEFAULT_APPID } });
    assert.equal(wx.requests.at(-1).header['X-WX-AppId'], DEFAULT_APPID);
  }
});
