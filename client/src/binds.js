/**
 * binds.js: bindInfo and bindPhone, the calls that send data WeChat sealed
 * with the user's session_key. On 409 session_key_stale the key rotated at
 * WeChat after the service last saw it: log in again (a fresh wx.login, so
 * the service learns the newest key), then retry once with fresh data from
 * options.refresh, or reject for the page to ask the user again.
 */
'use strict';

var localError = require('./errors').localError;

/** auth: from login.js ({request, login, setUser}); paths: the service's paths. */
function createBinds(auth, paths) {
  var request = auth.request;
  var login = auth.login;
  var setUser = auth.setUser;

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

  function bindInfo(detail, options) {
    return bindSealed(paths.bindInfo, profilePayload, detail, options);
  }

  function bindPhone(detail, options) {
    // The getPhoneNumber code is not sealed data: it cannot go stale.
    if (detail && detail.code) {
      return request({ url: paths.bindPhone, method: 'POST', data: { code: detail.code } })
        .then(function (profile) {
          setUser(profile);
          return profile;
        });
    }
    return bindSealed(paths.bindPhone, phonePayload, detail, options);
  }

  return {
    bindInfo: bindInfo,
    bindPhone: bindPhone
  };
}

module.exports = createBinds;
