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
 *     timeout: 10000,          // wx.request timeout, milliseconds
 *     paths: {                 // each one overridable
 *       login: '/oauth/login', logout: '/oauth/logout', info: '/user/info',
 *       bindInfo: '/user/bindinfo', bindPhone: '/user/bindphone', check: '/oauth/check'
 *     }
 *   })
 *
 * session.request({url, method, data, header})
 *     A call to the service: url is a path under baseURL (or a full URL that
 *     starts with baseURL; any other URL is refused with 'invalid_url', so
 *     the session never reaches another host). Resolves to the reply's `data` field (the service answers
 *     {"code": 0, "data": ...}); rejects with a ServiceError. On a 401 it logs
 *     in once (shared by every call that got a 401 at the same time) and
 *     retries the call once; a second 401 rejects.
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
 *     The last profile the service returned (/user/info or a bind), or null.
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
 * session.check()
 *     GET paths.check: {session, sessionKeyValid}.
 * session.logout(options)
 *     POST paths.logout ({all: true} when options.all: every session of the
 *     user). Forgets the stored cookies and token and session.user whatever
 *     the reply; call launch() again to sign back in.
 * session.clear()
 *     Forget the stored cookies and token.
 *
 * createSession.ServiceError
 *     The error every promise rejects with: err.statusCode (the HTTP status;
 *     0 when there was no reply), err.code (the service's numeric code),
 *     err.error (the slug: see the "Errors" table of the service's README),
 *     err.message, err.data (the reply body as received) and err.header (the
 *     reply headers, e.g. Retry-After). Slugs made on this side:
 *     'network_error' (wx.request failed: offline, timeout, DNS...),
 *     'wx_login_failed' (wx.login gave no code), 'invalid_detail' (a bind was
 *     given no encryptedData / code, e.g. the user refused), 'invalid_url'
 *     (a URL outside baseURL) and 'bad_response' (a reply that is not the
 *     service's JSON).
 *
 * Cookies: mini programs have no cookie jar, so this keeps one in wx storage.
 * It reads Set-Cookie from every reply (any header-name case; one string,
 * several joined with commas, or an array; or res.cookies on newer base
 * libraries), honours Max-Age (wins), Expires and deletion, keeps values with
 * '=' intact, and sends the live cookies in one Cookie header, or none.
 */
'use strict';

var DEFAULT_PATHS = {
  login: '/oauth/login',
  logout: '/oauth/logout',
  info: '/user/info',
  bindInfo: '/user/bindinfo',
  bindPhone: '/user/bindphone',
  check: '/oauth/check'
};

// ---------------------------------------------------------------------------
// ServiceError

function ServiceError(statusCode, body, header) {
  var reply = body && typeof body === 'object' ? body : {};
  var message = typeof reply.message === 'string' && reply.message ?
    reply.message : 'HTTP ' + statusCode;
  this.name = 'ServiceError';
  this.message = message;
  this.statusCode = statusCode;
  this.code = reply.code === undefined ? null : reply.code;
  this.error = typeof reply.error === 'string' && reply.error ? reply.error : 'bad_response';
  this.data = body === undefined ? null : body;
  this.header = header || {};
  if (typeof Error.captureStackTrace === 'function') {
    Error.captureStackTrace(this, ServiceError);
  } else {
    this.stack = new Error(message).stack;
  }
}
ServiceError.prototype = Object.create(Error.prototype);
ServiceError.prototype.constructor = ServiceError;
ServiceError.prototype.toString = function () {
  return 'ServiceError: ' + this.statusCode + ' ' + this.error + ': ' + this.message;
};

function localError(slug, message) {
  return new ServiceError(0, { code: null, error: slug, message: message });
}

// ---------------------------------------------------------------------------
// Set-Cookie parsing

var MONTHS = {
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5,
  jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11
};

// "Thu, 01 Jan 1970 00:00:00 GMT", "Thursday, 01-Jan-70 00:00:00 GMT"
var HTTP_DATE = /(\d{1,2})[ \-]+([A-Za-z]{3})[A-Za-z]*[ \-]+(\d{2,4})\s+(\d{1,2}):(\d{1,2}):(\d{1,2})/;

/** An HTTP date as milliseconds since the epoch, or null. */
function parseHttpDate(text) {
  var m = HTTP_DATE.exec(text);
  if (m) {
    var month = MONTHS[m[2].toLowerCase()];
    var year = parseInt(m[3], 10);
    if (year < 100) {
      year += year < 70 ? 2000 : 1900;
    }
    if (month !== undefined) {
      return Date.UTC(year, month, parseInt(m[1], 10),
        parseInt(m[4], 10), parseInt(m[5], 10), parseInt(m[6], 10));
    }
  }
  var parsed = Date.parse(text);
  return isNaN(parsed) ? null : parsed;
}

// A comma starts a new cookie only when "name=" follows it; the comma in
// "Expires=Thu, 01 Jan 1970" is followed by a day number and a space.
var COOKIE_SEPARATOR = /,(?=\s*[^\s=;,]+=)/;

/** Several Set-Cookie values joined with commas, split back apart. */
function splitSetCookie(value) {
  var parts = String(value).split(COOKIE_SEPARATOR);
  var out = [];
  for (var i = 0; i < parts.length; i++) {
    var part = trim(parts[i]);
    if (part) {
      out.push(part);
    }
  }
  return out;
}

/**
 * One Set-Cookie value: {name, value, expires} where expires is milliseconds
 * since the epoch or null (a cookie without an expiry); an expires at or
 * before `now` means the server deleted the cookie. Null if unusable.
 */
function parseSetCookie(text, now) {
  var parts = String(text).split(';');
  var pair = parts[0];
  var eq = pair.indexOf('=');
  if (eq < 0) {
    return null;
  }
  var name = trim(pair.slice(0, eq));
  if (!name) {
    return null;
  }
  var value = trim(pair.slice(eq + 1));
  var maxAge = null;
  var expires = null;
  for (var i = 1; i < parts.length; i++) {
    var attribute = parts[i];
    var at = attribute.indexOf('=');
    var key = trim(at < 0 ? attribute : attribute.slice(0, at)).toLowerCase();
    var raw = at < 0 ? '' : trim(attribute.slice(at + 1));
    if (key === 'max-age') {
      if (/^-?\d+$/.test(raw)) {
        var seconds = parseInt(raw, 10);
        maxAge = seconds <= 0 ? -Infinity : now + seconds * 1000;
      }
    } else if (key === 'expires') {
      var date = parseHttpDate(raw);
      if (date !== null) {
        expires = date;
      }
    }
  }
  // Max-Age wins over Expires (RFC 6265, 5.3 step 3).
  return { name: name, value: value, expires: maxAge !== null ? maxAge : expires };
}

/** Every Set-Cookie value of a wx.request reply, one cookie per string. */
function setCookiesOf(res) {
  var found = [];
  var i;
  if (res && Array.isArray(res.cookies) && res.cookies.length) {
    for (i = 0; i < res.cookies.length; i++) {
      if (typeof res.cookies[i] === 'string') {
        found = found.concat(splitSetCookie(res.cookies[i]));
      }
    }
    return found;
  }
  var header = res && res.header;
  if (!header || typeof header !== 'object') {
    return found;
  }
  for (var name in header) {
    if (!Object.prototype.hasOwnProperty.call(header, name) ||
        String(name).toLowerCase() !== 'set-cookie') {
      continue;
    }
    var values = Array.isArray(header[name]) ? header[name] : [header[name]];
    for (i = 0; i < values.length; i++) {
      if (values[i] !== undefined && values[i] !== null) {
        found = found.concat(splitSetCookie(values[i]));
      }
    }
  }
  return found;
}

function trim(text) {
  return String(text).replace(/^\s+|\s+$/g, '');
}

// ---------------------------------------------------------------------------
// createSession

function createSession(options) {
  options = options || {};
  if (!options.baseURL || typeof options.baseURL !== 'string') {
    throw new TypeError('createSession: baseURL is required');
  }
  var api = options.wx || globalWx();
  if (!api) {
    throw new TypeError('createSession: no wx object (pass options.wx)');
  }
  var baseURL = options.baseURL.replace(/\/+$/, '');
  var useBearer = options.useBearer === true;
  var storageKey = options.storageKey || 'wx-session';
  var cookieKey = storageKey + ':cookies';
  var tokenKey = storageKey + ':token';
  var timeout = typeof options.timeout === 'number' ? options.timeout : 10000;
  var paths = Object.assign({}, DEFAULT_PATHS, options.paths || {});
  var now = typeof options.now === 'function' ? options.now : function () {
    return Date.now();
  };

  var session = {};
  var loginInFlight = null;
  var launchInFlight = null;
  // Bumped whenever the credentials change: a 401 to a call sent with older
  // credentials is retried with the new ones without logging in again.
  var generation = 0;
  var userKnown = false;
  var readyQueue = [];

  session.user = null;

  // -- storage -------------------------------------------------------------

  function load(key) {
    try {
      return api.getStorageSync(key);
    } catch (e) {
      return null;
    }
  }

  function save(key, value) {
    try {
      api.setStorageSync(key, value);
    } catch (e) {
      // Storage full or unavailable: nothing is kept, and the next call that
      // needs the session gets a 401 and logs in again.
    }
  }

  function forget(key) {
    try {
      if (typeof api.removeStorageSync === 'function') {
        api.removeStorageSync(key);
      } else {
        api.setStorageSync(key, '');
      }
    } catch (e) {
      // nothing to forget
    }
  }

  // -- cookie jar ----------------------------------------------------------

  function liveCookies() {
    var stored = load(cookieKey);
    var cookies = {};
    var dropped = false;
    var at = now();
    if (!stored || typeof stored !== 'object') {
      return cookies;
    }
    for (var name in stored) {
      if (!Object.prototype.hasOwnProperty.call(stored, name)) {
        continue;
      }
      var cookie = stored[name];
      if (!cookie || typeof cookie.value !== 'string') {
        dropped = true;
      } else if (typeof cookie.expires === 'number' && cookie.expires <= at) {
        dropped = true;
      } else {
        cookies[name] = { value: cookie.value, expires: typeof cookie.expires === 'number' ? cookie.expires : null };
      }
    }
    if (dropped) {
      save(cookieKey, cookies);
    }
    return cookies;
  }

  function storeCookies(res) {
    var values = setCookiesOf(res);
    if (!values.length) {
      return;
    }
    var cookies = liveCookies();
    var at = now();
    for (var i = 0; i < values.length; i++) {
      var cookie = parseSetCookie(values[i], at);
      if (!cookie) {
        continue;
      }
      if (cookie.expires !== null && cookie.expires <= at) {
        delete cookies[cookie.name];
      } else {
        cookies[cookie.name] = { value: cookie.value, expires: cookie.expires };
      }
    }
    save(cookieKey, cookies);
  }

  function cookieHeader() {
    var cookies = liveCookies();
    var pairs = [];
    for (var name in cookies) {
      if (Object.prototype.hasOwnProperty.call(cookies, name)) {
        pairs.push(name + '=' + cookies[name].value);
      }
    }
    return pairs.length ? pairs.join('; ') : null;
  }

  function storedToken() {
    var token = load(tokenKey);
    return typeof token === 'string' && token ? token : null;
  }

  function hasStoredSession() {
    return useBearer ? storedToken() !== null : cookieHeader() !== null;
  }

  function clearCredentials() {
    forget(cookieKey);
    forget(tokenKey);
    generation += 1;
  }

  // -- transport -----------------------------------------------------------

  function headersFor(callerHeader) {
    var header = {};
    var name;
    var hasContentType = false;
    var auth = null;
    var authName = null;
    if (useBearer) {
      var token = storedToken();
      if (token) {
        authName = 'authorization';
        auth = 'Bearer ' + token;
      }
    } else {
      auth = cookieHeader();
      authName = auth ? 'cookie' : null;
    }
    for (name in callerHeader || {}) {
      if (!Object.prototype.hasOwnProperty.call(callerHeader, name)) {
        continue;
      }
      var lower = String(name).toLowerCase();
      // Never a Cookie in bearer mode; ours wins over a caller's duplicate.
      if ((useBearer && lower === 'cookie') || lower === authName) {
        continue;
      }
      if (lower === 'content-type') {
        hasContentType = true;
      }
      header[name] = callerHeader[name];
    }
    if (!hasContentType) {
      header['content-type'] = 'application/json';
    }
    if (authName === 'cookie') {
      header.Cookie = auth;
    } else if (authName === 'authorization') {
      header.Authorization = auth;
    }
    return header;
  }

  /** The full URL of a call, or null for one outside baseURL: the session
   * cookie or token must never be sent to another host. */
  function urlFor(url) {
    url = String(url || '');
    if (/^[a-z][a-z0-9+.\-]*:/i.test(url) || url.indexOf('//') === 0) {
      return url === baseURL || url.indexOf(baseURL + '/') === 0 ? url : null;
    }
    return baseURL + (url.charAt(0) === '/' ? url : '/' + url);
  }

  /** One wx.request; resolves to the reply's data, rejects with a ServiceError. */
  function send(call) {
    var url = urlFor(call.url);
    if (url === null) {
      return Promise.reject(localError('invalid_url',
        'Only URLs under baseURL can be called with the session: ' + call.url));
    }
    return new Promise(function (resolve, reject) {
      var settled = false;
      function once(fn, value) {
        if (!settled) {
          settled = true;
          fn(value);
        }
      }
      var options = {
        url: url,
        method: String(call.method || 'GET').toUpperCase(),
        header: headersFor(call.header),
        timeout: timeout,
        dataType: 'json',
        success: function (res) {
          storeCookies(res);
          var status = res.statusCode;
          var body = res.data;
          if (typeof body === 'string') {
            try {
              body = JSON.parse(body);
            } catch (e) {
              // not JSON: reported below
            }
          }
          if (status >= 200 && status < 300 && body && typeof body === 'object' &&
              body.code === 0) {
            once(resolve, body.data === undefined ? null : body.data);
            return;
          }
          if (status >= 200 && status < 300 && !(body && typeof body === 'object')) {
            once(reject, new ServiceError(status, {
              code: null, error: 'bad_response', message: 'The reply is not JSON.'
            }, res.header));
            return;
          }
          once(reject, new ServiceError(status, body, res.header));
        },
        fail: function (err) {
          var message = err && err.errMsg ? err.errMsg : 'request:fail';
          once(reject, localError('network_error', message));
        }
      };
      if (call.data !== undefined) {
        options.data = call.data;
      }
      try {
        api.request(options);
      } catch (e) {
        once(reject, localError('network_error', e && e.message ? e.message : String(e)));
      }
    });
  }

  function wxLogin() {
    return new Promise(function (resolve, reject) {
      try {
        api.login({
          success: function (res) {
            if (res && res.code) {
              resolve(res.code);
            } else {
              reject(localError('wx_login_failed', (res && res.errMsg) || 'wx.login gave no code'));
            }
          },
          fail: function (err) {
            reject(localError('wx_login_failed', (err && err.errMsg) || 'wx.login failed'));
          }
        });
      } catch (e) {
        reject(localError('wx_login_failed', e && e.message ? e.message : String(e)));
      }
    });
  }

  function checkSession() {
    return new Promise(function (resolve) {
      if (typeof api.checkSession !== 'function') {
        resolve(true);
        return;
      }
      try {
        api.checkSession({
          success: function () {
            resolve(true);
          },
          fail: function () {
            resolve(false);
          }
        });
      } catch (e) {
        resolve(false);
      }
    });
  }

  // -- protocol ------------------------------------------------------------

  function login() {
    if (loginInFlight) {
      return loginInFlight;
    }
    var attempt = wxLogin().then(function (code) {
      return send({ url: paths.login, method: 'POST', data: { code: code, type: 'wxapp' } });
    }).then(function (data) {
      if (data && typeof data.token === 'string' && data.token) {
        save(tokenKey, data.token);
      }
      generation += 1;
      return { token: data ? data.token : null, expiresIn: data ? data.expiresIn : null };
    });
    loginInFlight = attempt;
    function done() {
      if (loginInFlight === attempt) {
        loginInFlight = null;
      }
    }
    attempt.then(done, done);
    return attempt;
  }

  function request(call) {
    call = call || {};
    var sentWith = generation;
    return send(call).then(null, function (err) {
      if (err.statusCode !== 401) {
        throw err;
      }
      // Credentials changed since this call went out (another call's
      // re-login finished meanwhile): retry with them, no new login.
      var relogin = generation !== sentWith ? Promise.resolve() : login();
      return relogin.then(function () {
        return send(call);
      });
    });
  }

  function setUser(user) {
    session.user = user;
    userKnown = true;
    var queue = readyQueue;
    readyQueue = [];
    for (var i = 0; i < queue.length; i++) {
      deliver(queue[i], user);
    }
  }

  function deliver(fn, user) {
    // Each callback in its own job, in order; one that throws does not stop
    // the others (its error surfaces as an unhandled rejection).
    Promise.resolve(user).then(fn);
  }

  function launch() {
    if (launchInFlight) {
      return launchInFlight;
    }
    var run = (hasStoredSession() ? checkSession() : Promise.resolve(false))
      .then(function (alive) {
        return alive ? null : login();
      })
      .then(function () {
        return request({ url: paths.info, method: 'GET' });
      })
      .then(function (user) {
        setUser(user);
        return user;
      });
    launchInFlight = run;
    function done() {
      if (launchInFlight === run) {
        launchInFlight = null;
      }
    }
    run.then(done, done);
    return run;
  }

  function ready(fn) {
    if (typeof fn !== 'function') {
      return;
    }
    if (userKnown) {
      deliver(fn, session.user);
    } else {
      readyQueue.push(fn);
    }
  }

  /**
   * A bind of encrypted data: on 409 session_key_stale, log in (a fresh
   * wx.login, so the service learns the user's newest session_key), then
   * retry once with fresh data from options.refresh, or reject.
   */
  function bindSealed(path, payloadOf, detail, options) {
    var payload = payloadOf(detail);
    if (!payload) {
      return Promise.reject(invalidDetail(detail));
    }
    return request({ url: path, method: 'POST', data: payload }).then(null, function (err) {
      if (err.error !== 'session_key_stale') {
        throw err;
      }
      return login().then(function () {
        if (!options || typeof options.refresh !== 'function') {
          throw err;
        }
        return Promise.resolve(err).then(options.refresh).then(function (fresh) {
          var again = payloadOf(fresh);
          if (!again) {
            throw invalidDetail(fresh);
          }
          return again;
        }).then(function (again) {
          return request({ url: path, method: 'POST', data: again });
        }, function (refreshError) {
          // No fresh data (WeChat wants a new tap, the user said no...): the
          // page still gets session_key_stale, so it knows to ask again.
          err.refreshError = refreshError;
          throw err;
        });
      });
    }).then(function (profile) {
      setUser(profile);
      return profile;
    });
  }

  function profilePayload(detail) {
    if (!detail || !detail.encryptedData || !detail.iv) {
      return null;
    }
    var payload = { encryptedData: detail.encryptedData, iv: detail.iv };
    if (detail.rawData !== undefined && detail.signature !== undefined) {
      payload.rawData = detail.rawData;
      payload.signature = detail.signature;
    }
    return payload;
  }

  function phonePayload(detail) {
    if (!detail || !detail.encryptedData || !detail.iv) {
      return null;
    }
    return { encryptedData: detail.encryptedData, iv: detail.iv };
  }

  function invalidDetail(detail) {
    return localError('invalid_detail',
      (detail && detail.errMsg) || 'No encryptedData/iv (or code) in the detail.');
  }

  session.request = request;
  session.login = login;
  session.launch = launch;
  session.ready = ready;

  session.bindInfo = function (detail, options) {
    return bindSealed(paths.bindInfo, profilePayload, detail, options);
  };

  session.bindPhone = function (detail, options) {
    if (detail && detail.code) {
      return request({ url: paths.bindPhone, method: 'POST', data: { code: detail.code } })
        .then(function (profile) {
          setUser(profile);
          return profile;
        });
    }
    return bindSealed(paths.bindPhone, phonePayload, detail, options);
  };

  session.check = function () {
    return request({ url: paths.check, method: 'GET' });
  };

  session.logout = function (options) {
    var body = options && options.all ? { all: true } : {};
    function finish() {
      clearCredentials();
      session.user = null;
      userKnown = false;
    }
    return send({ url: paths.logout, method: 'POST', data: body }).then(function (data) {
      finish();
      return data;
    }, function (err) {
      finish();
      throw err;
    });
  };

  session.clear = function () {
    clearCredentials();
  };

  return session;
}

function globalWx() {
  // The mini program runtime's wx, when there is one; referenced only here.
  return typeof wx !== 'undefined' ? wx : null; // eslint-disable-line no-undef
}

createSession.ServiceError = ServiceError;

module.exports = createSession;
