/**
 * transport.js: one call to the service, through wx.request or (an upload)
 * wx.uploadFile. Builds the URL (only under baseURL) and the headers (the
 * caller's, plus the Cookie or Authorization the session manages and the
 * X-WX-AppId of the mini program), passes every other option through, keeps
 * the reply's cookies, and turns the reply into its `data` or a ServiceError.
 */
'use strict';

var errors = require('./errors');

var ServiceError = errors.ServiceError;
var localError = errors.localError;

// The header that tells the service which mini program is calling (one
// deployment may serve several).
var APP_HEADER = 'X-WX-AppId';

// Options of a call that the transport sets itself; every other one goes to
// wx.request (or wx.uploadFile) as given. The callbacks are the transport's:
// the caller gets a Promise instead.
var MANAGED = {
  url: true,
  method: true,
  header: true,
  data: true,
  success: true,
  fail: true,
  complete: true
};
var UPLOAD_MANAGED = {
  url: true,
  filePath: true,
  name: true,
  header: true,
  success: true,
  fail: true,
  complete: true
};

/**
 * api: the wx object; credentials: from credentials.js; jar: from cookies.js;
 * options: {baseURL (no trailing slash), timeout, appId (or null: no
 * X-WX-AppId, the service's default app)}.
 */
function createTransport(api, credentials, jar, options) {
  var baseURL = options.baseURL;
  var timeout = options.timeout;
  var appId = options.appId;

  /** The caller's headers with the session's; upload: for wx.uploadFile. */
  function headersFor(callerHeader, upload) {
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
      if ((credentials.useBearer && lower === 'cookie') || lower === authName ||
          (appId && lower === APP_HEADER.toLowerCase())) {
        continue;
      }
      if (lower === 'content-type') {
        // wx.uploadFile writes its own multipart/form-data Content-Type with
        // the boundary; one given in header replaces it, and the body can
        // no longer be read.
        if (upload) {
          continue;
        }
        hasContentType = true;
      }
      header[name] = callerHeader[name];
    }
    if (!hasContentType && !upload) {
      header['content-type'] = 'application/json';
    }
    if (auth) {
      header[auth.name] = auth.value;
    }
    if (appId) {
      header[APP_HEADER] = appId;
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

  /** The options of a call that are not in `managed`, as given. */
  function passThrough(call, managed) {
    var out = {};
    for (var name in call) {
      if (Object.prototype.hasOwnProperty.call(call, name) &&
          !Object.prototype.hasOwnProperty.call(managed, name)) {
        out[name] = call[name];
      }
    }
    return out;
  }

  /** A reply as {data} (the service's {"code": 0}) or {error: ServiceError}. */
  function readReply(res) {
    var status = res.statusCode;
    var body = res.data;
    // wx.uploadFile always hands over the body as a string; wx.request does
    // when dataType is not 'json' or the reply did not parse.
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch (e) {
        // not JSON: reported below
      }
    }
    if (status >= 200 && status < 300 && body && typeof body === 'object' &&
        body.code === 0) {
      return { data: body.data === undefined ? null : body.data };
    }
    if (status >= 200 && status < 300 && !(body && typeof body === 'object')) {
      return {
        error: new ServiceError(status, {
          code: null, error: 'bad_response', message: 'The reply is not JSON.'
        }, res.header)
      };
    }
    return { error: new ServiceError(status, body, res.header) };
  }

  /**
   * Runs invoke(options) (wx.request or wx.uploadFile) with our callbacks;
   * resolves to the reply's data, rejects with a ServiceError. track, if
   * given, is called with the task it returned (null when it returns none).
   */
  function perform(invoke, request, track) {
    return new Promise(function (resolve, reject) {
      var settled = false;
      function once(fn, value) {
        if (!settled) {
          settled = true;
          fn(value);
        }
      }
      request.success = function (res) {
        jar.store(res);
        var reply = readReply(res);
        if (reply.error) {
          once(reject, reply.error);
        } else {
          once(resolve, reply.data);
        }
      };
      request.fail = function (err) {
        var message = err && err.errMsg ? err.errMsg : 'request:fail';
        once(reject, localError('network_error', message));
      };
      try {
        var task = invoke(request);
        if (track) {
          track(task && typeof task === 'object' ? task : null);
        }
      } catch (e) {
        once(reject, localError('network_error', e && e.message ? e.message : String(e)));
      }
    });
  }

  function outside(url) {
    return Promise.reject(localError('invalid_url',
      'Only URLs under baseURL can be called with the session: ' + url));
  }

  /** One wx.request: call is {url, method, data, header, ...wx.request options}. */
  function send(call, track) {
    var url = urlFor(call.url);
    if (url === null) {
      return outside(call.url);
    }
    var request = passThrough(call, MANAGED);
    request.url = url;
    request.method = String(call.method || 'GET').toUpperCase();
    request.header = headersFor(call.header, false);
    if (request.timeout === undefined) {
      request.timeout = timeout;
    }
    if (request.dataType === undefined) {
      request.dataType = 'json';
    }
    if (call.data !== undefined) {
      request.data = call.data;
    }
    return perform(function (options) {
      return api.request(options);
    }, request, track);
  }

  /**
   * One wx.uploadFile: call is {url, filePath, name, header, formData?,
   * ...wx.uploadFile options}. Its success gives no headers (on most base
   * libraries) and the body as a string; without a timeout of its own, the
   * app's networkTimeout.uploadFile applies (60 s by default), not the
   * session's.
   */
  function upload(call, track) {
    var url = urlFor(call.url);
    if (url === null) {
      return outside(call.url);
    }
    if (typeof call.filePath !== 'string' || !call.filePath) {
      return Promise.reject(localError('invalid_detail',
        'No file to upload: pass the temporary file path (e.detail.avatarUrl).'));
    }
    var request = passThrough(call, UPLOAD_MANAGED);
    request.url = url;
    request.filePath = call.filePath;
    request.name = call.name;
    request.header = headersFor(call.header, true);
    return perform(function (options) {
      return api.uploadFile(options);
    }, request, track);
  }

  return {
    send: send,
    upload: upload
  };
}

module.exports = createTransport;
