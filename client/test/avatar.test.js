'use strict';
// session.uploadAvatar(): wx.uploadFile (a real multipart POST in the
// simulated wx) to POST /user/avatar, WeChat's asynchronous image check in
// the emulator, whose verdict `make run`'s dev/run.py has it push to the
// service, and refresh() to learn the outcome.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const createSession = require('../wx-session');
const { useStack } = require('./stack');
const { writePng } = require('./images');
const {
  createWx, endSession, setRules, clearRules, addFault, mediaChecksDone, holdMediaChecks,
} = require('./wx');

const { ServiceError } = createSession;

let images;

const stack = useStack({}, async () => {
  images = fs.mkdtempSync(path.join(stack.dir, 'images-'));
  // WeChat's verdicts wait until a test releases them (mediaChecksDone with
  // release): otherwise a quick verdict may beat the upload's answer, which
  // then already tells the outcome instead of "pending".
  await holdMediaChecks(stack, true);
});

let colours = 0;
/** A PNG no other test uploads (each colour re-encodes to its own avatar). */
function picture() {
  colours += 1;
  return writePng(images, `avatar-${colours}.png`, [(colours * 40) % 256, (colours * 90) % 256, 200]);
}

async function loggedIn(session = {}, device = {}) {
  const wx = createWx(stack, device);
  const client = createSession(Object.assign({ baseURL: stack.service, wx }, session));
  await client.launch();
  return { wx, session: client };
}

const header = (record, name) => {
  const key = Object.keys(record.header).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : record.header[key];
};

const trail = (wx, from = 0) => wx.requests.slice(from).map((r) => `${r.method} ${r.path} ${r.statusCode}`);

/** The URL of a stored avatar: this service's, named by the SHA-256 of the JPEG. */
const isAvatarURL = (url) => url.startsWith(`${stack.service}/avatars/`) && /\/[0-9a-f]{64}\.jpg$/.test(url);

/** Holds replies to `path` before the client sees them, until released. */
function holdReplies(wx, pathname) {
  let arrived;
  let release;
  const arrival = new Promise((resolve) => { arrived = resolve; });
  const gate = new Promise((resolve) => { release = resolve; });
  wx.afterResponse = (record) => {
    if (record.path !== pathname) return undefined;
    arrived(record);
    return gate;
  };
  return { arrived: arrival, release: () => release() };
}

async function isAborted(promise) {
  const error = await promise.then(() => assert.fail('resolved'), (e) => e);
  assert.ok(error instanceof ServiceError, String(error));
  assert.deepEqual([error.statusCode, error.code, error.error], [0, null, 'aborted']);
}

for (const useBearer of [false, true]) {
  test(`uploadAvatar (${useBearer ? 'bearer' : 'cookie'} mode): 202 pending with the session's credentials; after WeChat's pass, refresh() shows the new avatarUrl`, async () => {
    const { wx, session } = await loggedIn({ useBearer });
    const token = wx.getStorageSync('wx-session:token');
    const file = picture();

    const upload = session.uploadAvatar(file);
    const record = wx.requests.at(-1);
    assert.equal(upload.task, record.task, 'the UploadTask is there as soon as uploadAvatar returns');
    assert.equal(typeof upload.abort, 'function');
    const answer = await upload;

    // What went out: wx.uploadFile, the file in the field 'file', the session as request() sends it.
    assert.equal(record.kind, 'uploadFile');
    assert.equal(record.url, `${stack.service}/user/avatar`);
    assert.equal(record.statusCode, 202);
    assert.equal(record.name, 'file');
    assert.equal(record.filePath, file);
    assert.deepEqual(record.file, fs.readFileSync(file));
    assert.deepEqual(record.header, Object.assign({ 'X-WX-AppId': wx.appId },
      useBearer ? { Authorization: `Bearer ${token}` } : { Cookie: `sid=${token}` }));
    assert.equal(record.options.timeout, undefined, "no timeout given: the app's networkTimeout.uploadFile applies");
    assert.equal(record.options.formData, undefined);

    // The answer: pending, the old (no) avatar still the avatar.
    assert.equal(answer.avatarReview, 'pending');
    assert.equal(answer.avatarUrl, null);
    assert.ok(isAvatarURL(answer.pendingAvatarUrl), answer.pendingAvatarUrl);
    const { pendingAvatarUrl, ...profile } = answer;
    assert.deepEqual(session.user, profile, 'session.user is the profile, without pendingAvatarUrl');
    assert.equal((await session.request({ url: '/user/info' })).avatarReview, 'pending');

    // WeChat's verdict arrives (the emulator pushes it to the service).
    await mediaChecksDone(stack, { release: true });
    const user = await session.refresh();
    assert.equal(user.avatarUrl, pendingAvatarUrl);
    assert.equal(user.avatarReview, null);
    assert.deepEqual(session.user, user);
    const image = await fetch(pendingAvatarUrl);
    assert.equal(image.status, 200);
    assert.equal(image.headers.get('content-type'), 'image/jpeg');
  });
}

test('an avatar WeChat refuses: avatarReview goes back to null and avatarUrl stays the previous one', async () => {
  const { session } = await loggedIn();
  const first = await session.uploadAvatar(picture());
  await mediaChecksDone(stack, { release: true });
  assert.equal((await session.refresh()).avatarUrl, first.pendingAvatarUrl);

  // Every image risky from now on (the URL of each avatar has /avatars/ in it).
  await setRules(stack, { media: { risky: ['/avatars/'] } });
  let second;
  try {
    second = await session.uploadAvatar(picture());
    assert.equal(second.avatarReview, 'pending');
    assert.equal(second.avatarUrl, first.pendingAvatarUrl);
    assert.notEqual(second.pendingAvatarUrl, first.pendingAvatarUrl);
    await mediaChecksDone(stack, { release: true });
  } finally {
    await clearRules(stack);
  }
  const user = await session.refresh();
  assert.equal(user.avatarReview, null);
  assert.equal(user.avatarUrl, first.pendingAvatarUrl, 'the refused image never became the avatar');
  assert.equal((await fetch(second.pendingAvatarUrl)).status, 404, 'and its file was withdrawn');
});

test('uploadAvatar of a file that is no image: ServiceError avatar_not_an_image (the string reply parsed)', async () => {
  const { wx, session } = await loggedIn();
  const before = session.user;
  const file = path.join(images, 'notes.txt');
  fs.writeFileSync(file, 'not an image at all\n');
  const error = await session.uploadAvatar(file).catch((e) => e);
  assert.ok(error instanceof ServiceError, String(error));
  assert.deepEqual([error.statusCode, error.code, error.error], [415, 6004, 'avatar_not_an_image']);
  assert.equal(typeof error.data, 'object');
  assert.equal(error.data.error, 'avatar_not_an_image');
  assert.equal(session.user, before);
  assert.deepEqual(trail(wx).slice(-1), ['POST /user/avatar 415'], 'not retried');
});

test('uploadAvatar on an ended session: one re-login, one retry; a request that 401s at the same time shares the login', async () => {
  const { wx, session } = await loggedIn();
  const token = wx.getStorageSync('wx-session:token');
  await endSession(stack, token);
  const from = wx.requests.length;
  const logins = wx.loginCalls;

  const upload = session.uploadAvatar(picture());
  const [answer, info] = await Promise.all([upload, session.request({ url: '/user/info' })]);
  assert.equal(answer.avatarReview, 'pending');
  assert.equal(info.nickName, null);
  assert.equal(wx.loginCalls - logins, 1, 'one wx.login for both');
  const uploads = wx.sent('/user/avatar');
  assert.deepEqual(uploads.map((r) => r.statusCode), [401, 202]);
  assert.equal(wx.sent('/oauth/login').length, 2, 'the launch and one re-login');
  assert.equal(upload.task, uploads[1].task, 'task follows the retry');
  const fresh = wx.getStorageSync('wx-session:token');
  assert.notEqual(fresh, token);
  assert.equal(header(uploads[1], 'cookie'), `sid=${fresh}`);
  assert.deepEqual(uploads[1].file, uploads[0].file, 'the same file went again');
  assert.equal(wx.requests.length - from, 5, 'upload, info, login, and each retried once');
});

test('uploadAvatar when WeChat has not seen the user for two hours (61010): a fresh wx.login, one retry', async () => {
  const { wx, session } = await loggedIn();
  await addFault(stack, { endpoint: 'media_check_async', errcode: 61010, times: 1 });
  const from = wx.requests.length;
  const answer = await session.uploadAvatar(picture());
  assert.equal(answer.avatarReview, 'pending');
  assert.deepEqual(trail(wx, from), ['POST /user/avatar 409', 'POST /oauth/login 200', 'POST /user/avatar 202']);
  await mediaChecksDone(stack, { release: true });
  assert.equal((await session.refresh()).avatarUrl, answer.pendingAvatarUrl);
});

test('abort() while the upload is in flight: rejects with aborted, the UploadTask is aborted, nothing retried', async () => {
  const { wx, session } = await loggedIn();
  const held = holdReplies(wx, '/user/avatar');
  const upload = session.uploadAvatar(picture());
  const record = await held.arrived;
  assert.equal(upload.task, record.task);
  upload.abort();
  await isAborted(upload);
  assert.equal(record.aborted, true);
  held.release();
  assert.equal(await record.delivered, 'fail', 'an aborted wx.uploadFile calls fail, not success');
  upload.abort(); // again: nothing
  assert.equal(wx.sent('/user/avatar').length, 1);
});

test('abort() right after uploadAvatar(): the upload is cut', async () => {
  const { wx, session } = await loggedIn();
  const from = wx.requests.length;
  const upload = session.uploadAvatar(picture());
  upload.abort();
  await isAborted(upload);
  const [record] = wx.requests.slice(from);
  assert.equal(await record.delivered, 'fail');
  assert.equal(record.aborted, true);
  assert.equal(wx.requests.length - from, 1, 'no retry');
});

test('uploadAvatar options: formData, timeout and other wx.uploadFile options go through; the session headers win; no Content-Type', async () => {
  const { wx, session } = await loggedIn({ useBearer: true });
  const token = wx.getStorageSync('wx-session:token');
  const answer = await session.uploadAvatar(picture(), {
    header: { 'X-Trace': 't-2', 'Content-Type': 'application/json', authorization: 'Bearer forged', 'X-WX-AppId': 'wxforged' },
    formData: { source: 'profile-page' },
    timeout: 20000,
    enableHttp2: true,
    // Managed by the client: the caller's are not used.
    url: 'https://elsewhere.test/upload',
    name: 'avatar',
    success: () => assert.fail('the caller\'s success is not given to wx.uploadFile'),
  });
  assert.equal(answer.avatarReview, 'pending');
  const record = wx.sent('/user/avatar').at(-1);
  assert.equal(record.url, `${stack.service}/user/avatar`);
  assert.equal(record.name, 'file');
  assert.deepEqual(record.header, { 'X-Trace': 't-2', Authorization: `Bearer ${token}`, 'X-WX-AppId': wx.appId });
  assert.deepEqual(record.options.formData, { source: 'profile-page' });
  assert.equal(record.options.timeout, 20000);
  assert.equal(record.options.enableHttp2, true);
});

test('uploadAvatar without a file path: invalid_detail, nothing sent; a path that does not exist: network_error', async () => {
  const { wx, session } = await loggedIn();
  const sent = wx.requests.length;
  const none = session.uploadAvatar(undefined);
  assert.equal(none.task, null);
  const error = await none.catch((e) => e);
  assert.deepEqual([error.statusCode, error.error], [0, 'invalid_detail']);
  assert.equal(wx.requests.length, sent);

  const missing = await session.uploadAvatar(path.join(images, 'gone.png')).catch((e) => e);
  assert.deepEqual([missing.statusCode, missing.error], [0, 'network_error']);
  assert.match(missing.message, /^uploadFile:fail/);
});
