/**
 * credentials.js: what proves the session on each call. Cookie mode sends
 * the jar's Cookie header; bearer mode sends "Authorization: Bearer <token>"
 * with the token from the login reply (kept in wx storage) and never a
 * Cookie. Also counts generations: the number goes up whenever the
 * credentials change (a login, a logout, clear()).
 */
'use strict';

/**
 * storage: from storage.js; jar: from cookies.js;
 * options: {useBearer, tokenKey} (tokenKey is <storageKey>:token).
 */
function createCredentials(storage, jar, options) {
  var useBearer = options.useBearer;
  var tokenKey = options.tokenKey;
  var generation = 0;

  function storedToken() {
    var token = storage.load(tokenKey);
    return typeof token === 'string' && token ? token : null;
  }

  /** The header to send: {name: 'Cookie' or 'Authorization', value}, or null. */
  function header() {
    if (useBearer) {
      var token = storedToken();
      return token ? { name: 'Authorization', value: 'Bearer ' + token } : null;
    }
    var cookie = jar.header();
    return cookie ? { name: 'Cookie', value: cookie } : null;
  }

  function hasStoredSession() {
    return useBearer ? storedToken() !== null : jar.header() !== null;
  }

  /** A login went through: keep its token (the cookie is already in the jar). */
  function loggedIn(token) {
    if (typeof token === 'string' && token) {
      storage.save(tokenKey, token);
    }
    generation += 1;
  }

  function clear() {
    jar.forget();
    storage.forget(tokenKey);
    generation += 1;
  }

  return {
    useBearer: useBearer,
    header: header,
    hasStoredSession: hasStoredSession,
    loggedIn: loggedIn,
    clear: clear,
    generation: function () {
      return generation;
    }
  };
}

module.exports = createCredentials;
