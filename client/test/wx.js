'use strict';
// A simulated `wx` for one device: in-memory storage, wx.request and
// wx.uploadFile doing real HTTP with fetch and answering the way a mini
// program sees it, wx.login getting codes from the WeChat emulator,
// wx.checkSession per a flag, wx.getAccountInfoSync with the mini program's
// appid. It records every request so tests can count logins and read the
// headers sent.
//
//   const wx = createWx(stack, { cookieMode: 'joined', appId: 'wx...' });
//   wx.requests        [{kind, method, url, path, header, data, statusCode,
//                        setCookie, options, task, aborted, delivered}]: kind is
//                      'request' or 'uploadFile'; options what wx.request (or
//                      wx.uploadFile) was given; task what it returned (a
//                      RequestTask / UploadTask with abort(): as in WeChat, an
//                      aborted request calls fail with errMsg 'request:fail
//                      abort' ('uploadFile:fail abort'), never success);
//                      delivered a Promise of 'success' or 'fail', settled once
//                      the callbacks have run. An upload's data is its formData,
//                      and it also has filePath, name and file (the bytes sent).
//   wx.appId           what getAccountInfoSync says (options.appId; default the
//                      emulator's app, which `make run` serves); with appId null
//                      there is no getAccountInfoSync (base library < 2.2.2)
//   wx.accountInfoCalls how many times getAccountInfoSync was called
//   wx.loginCalls      how many times wx.login was called
//   wx.codes           the codes wx.login handed out
//   wx.openid          this device's WeChat user (after the first wx.login)
//   wx.sessionAlive    what wx.checkSession says (default true)
//   wx.loginCode       optional () => code: hand out this code instead
//   wx.afterResponse   optional async (record, res) => {}: runs before the
//                      caller sees the reply

const fs = require('node:fs');
const nodePath = require('node:path');

const COOKIE_MODES = ['joined', 'array', 'lowercase', 'cookies'];
// The emulator's app (wechat_emulator DEFAULT_APPID): the one dev/run.py serves.
const DEFAULT_APPID = 'wx0123456789abcdef';

async function postJSON(url, body, headers = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: Object.assign({ 'content-type': 'application/json' }, headers),
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`POST ${url}: ${response.status} ${text}`);
  }
  return JSON.parse(text);
}

async function getJSON(url) {
  const response = await fetch(url);
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`GET ${url}: ${response.status} ${text}`);
  }
  return JSON.parse(text);
}

const copy = (value) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

function canonical(name) {
  return name.replace(/(^|-)([a-z])/g, (match, dash, letter) => dash + letter.toUpperCase());
}

function createWx(stack, options = {}) {
  const cookieMode = options.cookieMode || 'joined';
  if (!COOKIE_MODES.includes(cookieMode)) {
    throw new Error(`cookieMode must be one of ${COOKIE_MODES.join(', ')}`);
  }
  const storage = new Map();
  const appId = options.appId === undefined ? DEFAULT_APPID : options.appId;

  const wx = {
    cookieMode,
    appId,
    accountInfoCalls: 0,
    requests: [],
    loginCalls: 0,
    checkSessionCalls: 0,
    codes: [],
    openid: options.openid || null,
    sessionAlive: true,
    loginCode: null,
    afterResponse: null,

    // -- storage, as deep copies like the real one --------------------------
    setStorageSync(key, value) {
      storage.set(key, copy(value));
    },
    getStorageSync(key) {
      return storage.has(key) ? copy(storage.get(key)) : '';
    },
    removeStorageSync(key) {
      storage.delete(key);
    },
    clearStorageSync() {
      storage.clear();
    },
    storageKeys() {
      return [...storage.keys()];
    },

    // -- wx.request ----------------------------------------------------------
    request(opts) {
      const method = (opts.method || 'GET').toUpperCase();
      const header = Object.assign({}, opts.header || {});
      let url = opts.url;
      let body;
      if (opts.data !== undefined) {
        if (method === 'GET' || method === 'HEAD') {
          if (opts.data && typeof opts.data === 'object') {
            const query = new URLSearchParams(opts.data).toString();
            if (query) url += (url.includes('?') ? '&' : '?') + query;
          }
        } else {
          body = typeof opts.data === 'string' ? opts.data : JSON.stringify(opts.data);
        }
      }
      const record = newRecord('request', opts, { method, url, header, data: copy(opts.data) });
      return transfer(record, opts, async (signal) => {
        const response = await fetch(url, { method, headers: header, body, signal });
        const text = await response.text();
        let data = text;
        if (opts.dataType === undefined || opts.dataType === 'json') {
          try {
            data = JSON.parse(text);
          } catch {
            data = text;
          }
        }
        const res = { statusCode: response.status, data, header: {}, errMsg: 'request:ok' };
        Object.assign(res, replyHeaders(response));
        return { response, text, res };
      });
    },

    // -- wx.uploadFile ---------------------------------------------------------
    // A real multipart/form-data POST: formData's fields, then the file in the
    // field `name`. As in WeChat, success gets {data (always a string),
    // statusCode, errMsg} and no headers: those reach only the task's
    // onHeadersReceived listeners. A Content-Type in header is sent as given
    // (it replaces the multipart one, and the service cannot read the body).
    uploadFile(opts) {
      const header = Object.assign({}, opts.header || {});
      const record = newRecord('uploadFile', opts, {
        method: 'POST', url: opts.url, header, data: copy(opts.formData),
      });
      record.filePath = opts.filePath;
      record.name = opts.name;
      record.file = null;
      const headerListeners = [];
      return transfer(record, opts, async (signal) => {
        let bytes;
        try {
          bytes = await fs.promises.readFile(opts.filePath);
        } catch {
          throw new Error('file not found');
        }
        record.file = bytes;
        const form = new FormData();
        for (const [name, value] of Object.entries(opts.formData || {})) form.append(name, String(value));
        form.append(opts.name, new Blob([bytes]), nodePath.basename(opts.filePath));
        const response = await fetch(opts.url, { method: 'POST', headers: header, body: form, signal });
        const text = await response.text();
        const received = replyHeaders(response);
        for (const listener of headerListeners) listener(received);
        return { response, text, res: { statusCode: response.status, data: text, errMsg: 'uploadFile:ok' } };
      }, {
        onHeadersReceived(listener) { headerListeners.push(listener); },
        offHeadersReceived(listener) {
          const i = headerListeners.indexOf(listener);
          if (i >= 0) headerListeners.splice(i, 1);
        },
        onProgressUpdate() {},
        offProgressUpdate() {},
      });
    },

    // -- wx.login ------------------------------------------------------------
    login(opts) {
      wx.loginCalls += 1;
      (async () => {
        if (wx.loginCode) return wx.loginCode();
        const issued = await emulatorLogin(stack, wx.openid);
        wx.openid = issued.openid;
        return issued.code;
      })().then(
        (code) => {
          wx.codes.push(code);
          const res = { code, errMsg: 'login:ok' };
          if (opts.success) opts.success(res);
          if (opts.complete) opts.complete(res);
        },
        (error) => {
          const res = { errMsg: `login:fail ${error.message}` };
          if (opts.fail) opts.fail(res);
          if (opts.complete) opts.complete(res);
        },
      );
    },

    // -- wx.checkSession -----------------------------------------------------
    checkSession(opts) {
      wx.checkSessionCalls += 1;
      setImmediate(() => {
        const res = { errMsg: wx.sessionAlive ? 'checkSession:ok' : 'checkSession:fail session expired' };
        const callback = wx.sessionAlive ? opts.success : opts.fail;
        if (callback) callback(res);
        if (opts.complete) opts.complete(res);
      });
    },

    // -- test helpers --------------------------------------------------------
    /** Requests to a path (optionally one method) recorded so far. */
    sent(pathname, method) {
      return wx.requests.filter((r) => r.path === pathname && (!method || r.method === method));
    },
    /** What getUserProfile / getPhoneNumber (legacy) hand out for this device. */
    encrypt(data) {
      return encrypt(stack, wx.openid, data);
    },
    /** The getPhoneNumber button's code for this device's user. */
    phoneCode(phoneNumber) {
      return phoneCode(stack, wx.openid, phoneNumber);
    },
    /** A wx.login whose code never reaches the service: may rotate the key. */
    rotateAtWeChat() {
      return emulatorLogin(stack, wx.openid);
    },
  };

  if (appId !== null) {
    wx.getAccountInfoSync = () => {
      wx.accountInfoCalls += 1;
      return { miniProgram: { appId, envVersion: 'develop', version: '' } };
    };
  }

  /** A record of wx.requests for one call, with its `delivered` promise. */
  function newRecord(kind, opts, { method, url, header, data }) {
    return {
      kind,
      method,
      url,
      path: new URL(url).pathname,
      header: copy(header),
      data,
      statusCode: null,
      setCookie: null,
      options: Object.assign({}, opts),
      task: null,
      aborted: false,
      delivered: null,
    };
  }

  /** The reply's headers as wx hands them over ({header}, or {header, cookies}). */
  function replyHeaders(response) {
    const out = { header: {} };
    const lower = cookieMode === 'lowercase';
    for (const [name, value] of response.headers) {
      if (name === 'set-cookie') continue;
      out.header[lower ? name : canonical(name)] = value;
    }
    const setCookies = response.headers.getSetCookie();
    if (setCookies.length) {
      if (cookieMode === 'joined') out.header['Set-Cookie'] = setCookies.join(', ');
      if (cookieMode === 'array') out.header['Set-Cookie'] = setCookies.slice();
      if (cookieMode === 'lowercase') out.header['set-cookie'] = setCookies.join(', ');
    }
    if (cookieMode === 'cookies') out.cookies = setCookies.slice();
    return out;
  }

  /**
   * Runs one transfer: exchange(signal) does the HTTP and gives {response,
   * text, res}; then success/complete or fail/complete run as in WeChat.
   * Returns the task (abort(), plus `extra` methods).
   */
  function transfer(record, opts, exchange, extra = {}) {
    const label = record.kind;
    let deliver;
    record.delivered = new Promise((resolve) => { deliver = resolve; });
    const controller = new AbortController();
    let aborted = false;
    let finished = false;
    const task = Object.assign({
      abort() {
        if (finished || aborted) return; // a request that is over stays as it was
        aborted = true;
        record.aborted = true;
        controller.abort();
      },
    }, extra);
    record.task = task;
    wx.requests.push(record);
    const signals = [controller.signal];
    if (opts.timeout) signals.push(AbortSignal.timeout(opts.timeout));

    (async () => {
      const { response, text, res } = await exchange(AbortSignal.any(signals));
      responsesSeen.push(`${JSON.stringify([...response.headers])}\n${text}`);
      record.setCookie = response.headers.getSetCookie();
      record.statusCode = response.status;
      if (wx.afterResponse) await wx.afterResponse(record, res);
      if (aborted) throw new Error('aborted after the reply came');
      return res;
    })().then(
      (res) => {
        finished = true;
        try {
          if (opts.success) opts.success(res);
          if (opts.complete) opts.complete(res);
        } finally {
          deliver('success');
        }
      },
      (error) => {
        finished = true;
        const cause = error && error.cause ? error.cause.code || error.cause.message : '';
        const why = `${error.name === 'TimeoutError' ? 'timeout' : error.message} ${cause}`.trim();
        const res = { errMsg: `${label}:fail ${aborted ? 'abort' : why}` };
        record.statusCode = 0;
        try {
          if (opts.fail) opts.fail(res);
          if (opts.complete) opts.complete(res);
        } finally {
          deliver('fail');
        }
      },
    );
    return task;
  }

  return wx;
}

// -- leak watch: what WeChat handed out must never come back from the service --

// The app secret the dev server runs with (config.DEV_SECRET).
const handedOut = new Set(['emulator-secret-0123456789abcdef']);
const responsesSeen = [];

/** The secrets (openid, unionid, session_key, the app secret) found in any
 *  response a simulated wx received or in the given texts (say, the stack's output). */
function leaks(...texts) {
  const haystack = responsesSeen.concat(texts);
  return [...handedOut].filter((secret) => haystack.some((text) => text.includes(secret)));
}

/** The emulator's wx.login: a fresh code (and, the first time, a new user). */
async function emulatorLogin(stack, openid) {
  const issued = await postJSON(`${stack.emulator}/__emulator__/login`, openid ? { openid } : {});
  for (const secret of [issued.openid, issued.unionid, issued.session_key]) {
    if (secret) handedOut.add(secret);
  }
  return issued;
}

/** {encryptedData, iv, rawData, signature} under the user's current key. */
async function encrypt(stack, openid, data) {
  const sealed = await postJSON(`${stack.emulator}/__emulator__/encrypt`, { openid, data });
  return {
    encryptedData: sealed.encryptedData,
    iv: sealed.iv,
    rawData: sealed.rawData,
    signature: sealed.signature,
  };
}

/** {code} as the getPhoneNumber button gives it. */
function phoneCode(stack, openid, phoneNumber) {
  const body = { openid };
  if (phoneNumber) Object.assign(body, { phoneNumber, purePhoneNumber: phoneNumber });
  return postJSON(`${stack.emulator}/__emulator__/phonecode`, body);
}

/** What WeChat received: [{endpoint, query, ...}]. */
async function emulatorCalls(stack, endpoint) {
  const query = endpoint ? `?endpoint=${encodeURIComponent(endpoint)}` : '';
  return (await getJSON(`${stack.emulator}/__emulator__/calls${query}`)).calls;
}

function configureEmulator(stack, config) {
  return postJSON(`${stack.emulator}/__emulator__/config`, config);
}

/** Content-security verdicts: {text?: {risky, review, label}, media?: {...}}. */
function setRules(stack, rules) {
  return postJSON(`${stack.emulator}/__emulator__/rules`, rules);
}

/** Back to "everything passes". */
async function clearRules(stack) {
  const response = await fetch(`${stack.emulator}/__emulator__/rules`, { method: 'DELETE' });
  if (!response.ok) throw new Error(`DELETE rules: ${response.status} ${await response.text()}`);
}

/** The next call(s) to a WeChat endpoint fail: {endpoint, errcode?, times?, ...}. */
function addFault(stack, fault) {
  return postJSON(`${stack.emulator}/__emulator__/faults`, fault);
}

/** Blocks until every media check has been decided and its verdict pushed to the
 *  service; release: true first lets held checks go. */
async function mediaChecksDone(stack, { release = false } = {}) {
  return (await postJSON(`${stack.emulator}/__emulator__/media_checks/wait`, { release })).checks;
}

/** hold true: new media checks wait (no verdict) until mediaChecksDone(stack, {release: true}). */
function holdMediaChecks(stack, hold) {
  return postJSON(`${stack.emulator}/__emulator__/media_checks`, { hold });
}

/** End a session on the server from outside (an expired session, as the client sees it). */
function endSession(stack, token) {
  return postJSON(`${stack.service}/oauth/logout`, {}, { authorization: `Bearer ${token}` });
}

module.exports = {
  leaks,
  COOKIE_MODES,
  DEFAULT_APPID,
  createWx,
  emulatorLogin,
  encrypt,
  phoneCode,
  emulatorCalls,
  configureEmulator,
  setRules,
  clearRules,
  addFault,
  mediaChecksDone,
  holdMediaChecks,
  endSession,
};
