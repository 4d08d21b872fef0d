/**
 * storage.js: wx storage that never throws. Everything the client keeps
 * (cookies, token) goes through here.
 */
'use strict';

function createStorage(api) {
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

  return {
    load: load,
    save: save,
    forget: forget
  };
}

module.exports = createStorage;
