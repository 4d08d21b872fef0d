/**
 * login.js: logging in and staying logged in. wx.login + POST paths.login,
 * single-flight; request(), and run() under it for uploads too, which answer
 * a 401 with one shared re-login and one retry, and hand back the wx.request
 * (or wx.uploadFile) task in flight with abort(); launch() for App.onLaunch;
 * ready() and session.user.
 */
'use strict';

var localError = require('./errors').localError;

/**
 * api: the wx object; transport: from transport.js; credentials: from
 * credentials.js; paths: the service's paths; session: the session object
 * (its `user` is set here).
 */
function createLogin(api, transport, credentials, paths, session) {
  var send = transport.send;
  var loginInFlight = null;
  var launchInFlight = null;
  var userKnown = false;
  var readyQueue = [];

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

  /** wx.checkSession as a Promise of true (WeChat's session_key is alive) or false. */
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

  function login() {
    if (loginInFlight) {
      return loginInFlight;
    }
    var attempt = wxLogin().then(function (code) {
      return send({ url: paths.login, method: 'POST', data: { code: code, type: 'wxapp' } });
    }).then(function (data) {
      credentials.loggedIn(data ? data.token : null);
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

  /**
   * One call through sendOne (transport.send or transport.upload), with the
   * task and abort() on the promise it returns. A 401 logs in once (shared)
   * and retries once. relogin, if given, is one more error slug answered the
   * same way, once: a fresh login, then one retry.
   */
  function run(sendOne, call, relogin) {
    var task = null;
    var aborted = false;
    var retried = {};
    function track(current) {
      task = current;
    }
    function attempt() {
      var sentWith = credentials.generation();
      return sendOne(call, track).then(null, function (err) {
        var unauthorized = err.statusCode === 401;
        var reason = unauthorized ? 'status 401' : err.error;
        if (aborted || retried[reason] || !(unauthorized || (relogin && err.error === relogin))) {
          throw err;
        }
        retried[reason] = true;
        // Credentials changed since this call went out (another call's
        // re-login finished meanwhile): retry with them, no new login.
        var fresh = unauthorized && credentials.generation() !== sentWith ?
          Promise.resolve() : login();
        return fresh.then(function () {
          if (aborted) {
            throw err;
          }
          return attempt();
        });
      });
    }

    var settled = false;
    var abortNow;
    var result = new Promise(function (resolve, reject) {
      abortNow = reject;
      attempt().then(function (data) {
        settled = true;
        resolve(data);
      }, function (err) {
        settled = true;
        reject(err);
      });
    });
    Object.defineProperty(result, 'task', {
      enumerable: true,
      get: function () {
        return task;
      }
    });
    // Aborts the wx.request (or wx.uploadFile) in flight. During a re-login
    // there is none of this call's: the login goes on (other calls may be
    // waiting on it) and this call is simply not retried.
    result.abort = function () {
      if (settled || aborted) {
        return;
      }
      aborted = true;
      abortNow(localError('aborted', 'The request was aborted.'));
      if (task && typeof task.abort === 'function') {
        try {
          task.abort();
        } catch (e) {
          // the request is over anyway
        }
      }
    };
    return result;
  }

  function request(call) {
    return run(send, call || {}, null);
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

  function forgetUser() {
    session.user = null;
    userKnown = false;
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
    var run = (credentials.hasStoredSession() ? checkSession() : Promise.resolve(false))
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

  return {
    login: login,
    request: request,
    run: run,
    launch: launch,
    ready: ready,
    setUser: setUser,
    forgetUser: forgetUser
  };
}

module.exports = createLogin;
