/**
 * login.js: logging in and staying logged in. wx.login + POST paths.login,
 * single-flight; request(), which answers a 401 with one shared re-login and
 * one retry, and hands back the wx.request task in flight with abort();
 * launch() for App.onLaunch; ready() and session.user.
 */
'use strict';

var localError = require('./errors').localError;

/**
 * api: the wx object; send: transport.send; credentials: from
 * credentials.js; paths: the service's paths; session: the session object
 * (its `user` is set here).
 */
function createLogin(api, send, credentials, paths, session) {
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

  function request(call) {
    call = call || {};
    var task = null;
    var aborted = false;
    function track(current) {
      task = current;
    }
    var sentWith = credentials.generation();
    var attempt = send(call, track).then(null, function (err) {
      if (err.statusCode !== 401 || aborted) {
        throw err;
      }
      // Credentials changed since this call went out (another call's
      // re-login finished meanwhile): retry with them, no new login.
      var relogin = credentials.generation() !== sentWith ? Promise.resolve() : login();
      return relogin.then(function () {
        if (aborted) {
          throw err;
        }
        return send(call, track);
      });
    });

    var settled = false;
    var abortNow;
    var result = new Promise(function (resolve, reject) {
      abortNow = reject;
      attempt.then(function (data) {
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
    // Aborts the wx.request in flight. During a re-login there is none of
    // this call's: the login goes on (other calls may be waiting on it) and
    // this call is simply not retried.
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
    launch: launch,
    ready: ready,
    setUser: setUser,
    forgetUser: forgetUser
  };
}

module.exports = createLogin;
