/**
 * wx-session.js: the mini program side of wx-session-service.
 *
 * Drop this one file into a mini program (CommonJS, ES5, no dependencies). It
 * logs in with wx.login, keeps the session the service hands out, replays it
 * on every call, logs in again when the session has lapsed, and turns every
 * failure into a ServiceError carrying the service's error slug.
 *
 *   var createSession = require('./wx-session')
 *   var session = createSession({
 *     baseURL: 'https://api.example.com',  // required
 *     wx: wx,                  // optional; defaults to the global wx
 *     useBearer: false,        // true: send "Authorization: Bearer <token>" (the
 *                              //   token from the login reply) instead of a Cookie
 *     storageKey: 'wx-session',// prefix of the wx storage keys used:
 *                              //   <storageKey>:cookies and <storageKey>:token
 *     timeout: 10000,          // wx.request timeout, milliseconds, for calls
 *                              //   that give none of their own
 *     appId: 'wx...',          // optional: sent as X-WX-AppId on every call;
 *                              //   by default the mini program's own appid
 *                              //   (wx.getAccountInfoSync().miniProgram.appId,
 *                              //   base library 2.2.2+), read once; with
 *                              //   neither, no header (the service's default app)
 *     paths: {                 // each one overridable
 *       login: '/oauth/login', logout: '/oauth/logout', info: '/user/info',
 *       bindInfo: '/user/bindinfo', bindPhone: '/user/bindphone', check: '/oauth/check',
 *       profile: '/user/profile', avatar: '/user/avatar', account: '/user'
 *     }
 *   })
 *
 * Every call (request, login, the binds, uploads, logout...) carries the
 * X-WX-AppId header when an appid is known: one deployment may serve several
 * mini programs, and a session answers only to the app it was issued for.
 *
 * session.request({url, method, data, header, ...})
 *     A call to the service: url is a path under baseURL (or a full URL that
 *     starts with baseURL; any other URL is refused with 'invalid_url', so
 *     the session never reaches another host). Resolves to the reply's `data`
 *     field (the service answers {"code": 0, "data": ...}); rejects with a
 *     ServiceError. On a 401 it logs in once (shared by every call that got a
 *     401 at the same time) and retries the call once; a second 401 rejects.
 *     Every other wx.request option (timeout, dataType, responseType,
 *     enableHttp2, enableCache, enableChunked...) goes to wx.request as given,
 *     on the retry too; success/fail/complete are ignored (the promise stands
 *     for them) and the session's own Cookie or Authorization header and
 *     X-WX-AppId win.
 *     The reply is still read as the service's JSON.
 *     The promise it returns has two more members:
 *       .task     the RequestTask of this call's wx.request in flight (the
 *                 retry's once it is sent after a re-login); null when
 *                 wx.request was not called or returned nothing
 *       .abort()  aborts that wx.request and rejects the promise with a
 *                 ServiceError 'aborted' (statusCode 0); nothing once the
 *                 promise has settled. During a re-login the shared login
 *                 goes on and the call is not retried.
 *     Promises made from it with .then() have neither.
 * session.login()
 *     wx.login, then POST paths.login {code, type: 'wxapp'}; keeps the cookie
 *     and the token. Resolves to {token, expiresIn}. Single-flight: callers
 *     arriving while a login is under way share it.
 * session.launch()
 *     For App.onLaunch: with a stored session, wx.checkSession (logging in if
 *     it fails); without one, login(); then GET paths.info. Resolves to the
 *     user, sets session.user and runs the ready() callbacks in order.
 *     Concurrent calls share one run.
 * session.ready(fn)
 *     Calls fn(user) once the user is known (asynchronously, even when it
 *     already is); until then fn waits in a queue. The app.ready pattern.
 * session.user
 *     The last profile the service returned (/user/info, a bind, setProfile,
 *     uploadAvatar), or null.
 * session.bindInfo(detail, options)
 *     detail: a wx.getUserProfile / getUserInfo result ({encryptedData, iv,
 *     rawData?, signature?}). POST paths.bindInfo; resolves to the profile.
 * session.bindPhone(detail, options)
 *     detail: the getPhoneNumber button's e.detail. With detail.code it posts
 *     {code}; otherwise the legacy {encryptedData, iv}. Resolves to the profile.
 *     For both binds, a 409 session_key_stale makes the client log in again
 *     (a fresh wx.login, as the service asks); then, if options.refresh is a
 *     function returning a Promise of a fresh detail (say, a new
 *     wx.getUserProfile result), the bind is retried once with it; without
 *     it, or when refresh rejects or gives no encryptedData, the ServiceError
 *     (error 'session_key_stale'; err.refreshError says why refresh failed)
 *     rejects so the page can ask the user to tap again: the login already
 *     happened, so data from that tap opens. Stale data is never sent twice.
 * session.setProfile(fields)
 *     PUT paths.profile with fields' nickName, gender (0, 1, 2), city,
 *     province and country, any subset (other keys are not sent, so a form's
 *     e.detail.value can be passed as it is). Each changed text passes
 *     WeChat's content security first. Resolves to the profile and sets
 *     session.user, as the binds do. A 401 logs in once and retries once; so
 *     does a 409 'wechat_visit_expired' (WeChat checks content only for users
 *     seen in the last two hours: a fresh wx.login tells it). Errors to
 *     handle: 'content_risky' and 'content_needs_review' (422; nothing was
 *     stored; err.data.data is {field, label}: which field, WeChat's label),
 *     'invalid_field' (400: too long, a control character, an empty
 *     nickName, no field at all; err.message says which),
 *     'wechat_visit_expired' (again after the retry).
 * session.uploadAvatar(tempFilePath, options)
 *     tempFilePath: <button open-type="chooseAvatar">'s e.detail.avatarUrl.
 *     wx.uploadFile to paths.avatar (the file in the field 'file') with the
 *     session's Cookie or Authorization and X-WX-AppId, as request() sends
 *     them; options: header, formData, timeout (default: the app's
 *     networkTimeout.uploadFile) and any other wx.uploadFile option. The
 *     same 401 and 'wechat_visit_expired' handling as setProfile, the same
 *     ServiceErrors ('avatar_not_an_image', 'avatar_unreadable',
 *     'avatar_too_large', 'payload_too_large'...). Resolves to the service's
 *     answer: the profile plus pendingAvatarUrl. Usually (HTTP 202) the image
 *     waits for WeChat's check: avatarReview is 'pending', pendingAvatarUrl
 *     the URL it will have, and avatarUrl still the previous one. It becomes
 *     avatarUrl only once WeChat approves it (a refusal drops it); the page
 *     learns which from refresh() (or the next launch()): avatarReview goes
 *     back to null, and avatarUrl is pendingAvatarUrl if approved, unchanged
 *     if not. An answer without 'pending' (200, pendingAvatarUrl null) is
 *     final already: the picture was the avatar, or WeChat's verdict came
 *     first. Sets session.user to the profile (without pendingAvatarUrl).
 *     Like request()'s, the promise has .task (the UploadTask in flight)
 *     and .abort().
 * session.refresh()
 *     GET paths.info: resolves to the user and sets session.user.
 * session.check()
 *     GET paths.check: {session, sessionKeyValid}.
 * session.logout(options)
 *     POST paths.logout ({all: true} when options.all: every session of the
 *     user). Forgets the stored cookies and token and session.user whatever
 *     the reply; call launch() again to sign back in.
 * session.deleteAccount()
 *     DELETE paths.account: the service erases the account (profile, phone,
 *     avatar) and ends every session of it. A 401 logs in once and retries
 *     once. Resolves to {deleted: true} and then forgets the stored cookies
 *     and token and session.user, as logout does; on a failure nothing is
 *     forgotten (the account is still there). A later launch() or call logs
 *     in to a fresh, empty account.
 * session.clear()
 *     Forget the stored cookies and token.
 *
 * createSession.ServiceError
 *     The error every promise rejects with: err.statusCode (the HTTP status;
 *     0 when there was no reply), err.code (the service's numeric code),
 *     err.error (the slug: see the "Errors" table of the service's README),
 *     err.message, err.data (the reply body as received) and err.header (the
 *     reply headers, e.g. Retry-After). Slugs made on this side:
 *     'network_error' (wx.request or wx.uploadFile failed: offline, timeout,
 *     DNS...), 'wx_login_failed' (wx.login gave no code), 'invalid_detail'
 *     (a bind was given no encryptedData / code, e.g. the user refused; an
 *     upload no file path), 'invalid_url' (a URL outside baseURL), 'aborted'
 *     (abort() was called) and 'bad_response' (a reply that is not the
 *     service's JSON).
 *
 * Cookies: mini programs have no cookie jar, so this keeps one in wx storage.
 * It reads Set-Cookie from every reply (any header-name case; one string,
 * several joined with commas, or an array; or res.cookies on newer base
 * libraries), honours Max-Age (wins), Expires and deletion, keeps values with
 * '=' intact, and sends the live cookies in one Cookie header, or none.
 */

/*
 * index.js: createSession. Reads the options, assembles the parts, and
 * hangs the public methods on the session object (check, logout,
 * deleteAccount and clear are made here). The API is the comment that
 * opens src/index.js; the build moves it to the top of wx-session.js.
 */
'use strict';

var ServiceError = require('./errors').ServiceError;
var createStorage = require('./storage');
var createCookieJar = require('./cookies');
var createCredentials = require('./credentials');
var createTransport = require('./transport');
var createLogin = require('./login');
var createBinds = require('./binds');
var createProfile = require('./profile');

var DEFAULT_PATHS = {
  login: '/oauth/login',
  logout: '/oauth/logout',
  info: '/user/info',
  bindInfo: '/user/bindinfo',
  bindPhone: '/user/bindphone',
  check: '/oauth/check',
  profile: '/user/profile',
  avatar: '/user/avatar',
  account: '/user'
};

function createSession(options) {
  options = options || {};
  if (!options.baseURL || typeof options.baseURL !== 'string') {
    throw new TypeError('createSession: baseURL is required');
  }
  var api = options.wx || globalWx();
  if (!api) {
    throw new TypeError('createSession: no wx object (pass options.wx)');
  }
  var storageKey = options.storageKey || 'wx-session';
  var paths = Object.assign({}, DEFAULT_PATHS, options.paths || {});
  var now = typeof options.now === 'function' ? options.now : function () {
    return Date.now();
  };

  var session = {};
  session.user = null;

  var storage = createStorage(api);
  var jar = createCookieJar(storage, storageKey + ':cookies', now);
  var credentials = createCredentials(storage, jar, {
    useBearer: options.useBearer === true,
    tokenKey: storageKey + ':token'
  });
  var transport = createTransport(api, credentials, jar, {
    baseURL: options.baseURL.replace(/\/+$/, ''),
    timeout: typeof options.timeout === 'number' ? options.timeout : 10000,
    appId: appIdOf(api, options.appId)
  });
  var auth = createLogin(api, transport, credentials, paths, session);
  var binds = createBinds(auth, paths);
  var profile = createProfile(auth, transport, paths);

  session.request = auth.request;
  session.login = auth.login;
  session.launch = auth.launch;
  session.ready = auth.ready;
  session.bindInfo = binds.bindInfo;
  session.bindPhone = binds.bindPhone;
  session.setProfile = profile.setProfile;
  session.uploadAvatar = profile.uploadAvatar;
  session.refresh = profile.refresh;

  session.check = function () {
    return auth.request({ url: paths.check, method: 'GET' });
  };

  function forget() {
    credentials.clear();
    auth.forgetUser();
  }

  session.logout = function (options) {
    var body = options && options.all ? { all: true } : {};
    // Not request(): a 401 here must not log in again just to log out.
    return transport.send({ url: paths.logout, method: 'POST', data: body }).then(function (data) {
      forget();
      return data;
    }, function (err) {
      forget();
      throw err;
    });
  };

  session.deleteAccount = function () {
    // Through request(): a lapsed session logs in again (the same account)
    // and the deletion goes through. Only a deletion that happened forgets
    // the session: after a failure the account is still there.
    return auth.request({ url: paths.account, method: 'DELETE' }).then(function (data) {
      forget();
      return data;
    });
  };

  session.clear = function () {
    credentials.clear();
  };

  return session;
}

/**
 * The appid sent as X-WX-AppId: options.appId, else the running mini
 * program's own (wx.getAccountInfoSync, base library 2.2.2+; in a plugin,
 * miniProgram is the host's), else null: no header, the service's default
 * app. Read once, when the session is created.
 */
function appIdOf(api, given) {
  if (typeof given === 'string' && given) {
    return given;
  }
  try {
    var info = typeof api.getAccountInfoSync === 'function' ? api.getAccountInfoSync() : null;
    var appId = info && info.miniProgram ? info.miniProgram.appId : null;
    return typeof appId === 'string' && appId ? appId : null;
  } catch (e) {
    return null;
  }
}

function globalWx() {
  // The mini program runtime's wx, when there is one; referenced only here.
  return typeof wx !== 'undefined' ? wx : null; // eslint-disable-line no-undef
}

createSession.ServiceError = ServiceError;

module.exports = createSession;
