/**
 * transport.js: one call to the service through wx.request. Builds the URL
 * (only under baseURL) and the headers (the caller's, plus the Cookie or
 * Authorization the session manages), passes every other wx.request option
 * through, keeps the reply's cookies, and turns the reply into its `data` or
 * a ServiceError.
 */
'use strict';

var errors = require('./errors');

var ServiceError = errors.ServiceError;
var localError = errors.localError;

// Options of a call that the transport sets itself; every other one goes to
// wx.request as given. The callbacks are the transport's: the caller gets a
// Promise instead.
var MANAGED = {
  url: true,
  method: true,
  header: true,
  data: true,
  success: true,
  fail: true,
  complete: true
};

/**
 * api: the wx object; credentials: from credentials.js; jar: from cookies.js;
 * options: {baseURL (no trailing slash), timeout}.
 */
function createTransport(api, credentials, jar, options) {
  var baseURL = options.baseURL;
  var timeout = options.timeout;

  function headersFor(callerHeader) {
    var header = {};
    var name;
    var hasContentType = false;
    var auth = credentials.header();
    var authName = auth ? auth.name.toLowerCase() : null;
    for (name in callerHeader || {}) {
      if (!Object.prototype.hasOwnProperty.call(callerHeader, name)) {
        continue;
      }
      var lower = String(name).toLowerCase();
      // Never a Cookie in bearer mode; ours wins over a caller's duplicate.
      if ((credentials.useBearer && lower === 'cookie') || lower === authName) {
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
    if (auth) {
      header[auth.name] = auth.value;
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

  /**
   * One wx.request; resolves to the reply's data, rejects with a ServiceError.
   * track, if given, is called with the RequestTask wx.request returned (null
   * on base libraries that return none).
   */
  function send(call, track) {
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
      var request = {};
      for (var name in call) {
        if (Object.prototype.hasOwnProperty.call(call, name) &&
            !Object.prototype.hasOwnProperty.call(MANAGED, name)) {
          request[name] = call[name];
        }
      }
      request.url = url;
      request.method = String(call.method || 'GET').toUpperCase();
      request.header = headersFor(call.header);
      if (request.timeout === undefined) {
        request.timeout = timeout;
      }
      if (request.dataType === undefined) {
        request.dataType = 'json';
      }
      request.success = function (res) {
        jar.store(res);
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
      };
      request.fail = function (err) {
        var message = err && err.errMsg ? err.errMsg : 'request:fail';
        once(reject, localError('network_error', message));
      };
      if (call.data !== undefined) {
        request.data = call.data;
      }
      try {
        var task = api.request(request);
        if (track) {
          track(task && typeof task === 'object' ? task : null);
        }
      } catch (e) {
        once(reject, localError('network_error', e && e.message ? e.message : String(e)));
      }
    });
  }

  return {
    send: send
  };
}

module.exports = createTransport;
