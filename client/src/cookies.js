/**
 * cookies.js: the cookie jar. Mini programs have none, so this keeps one in
 * wx storage (under one key, as {name: {value, expires}}). It reads
 * Set-Cookie from every reply (any header-name case; one string, several
 * joined with commas, or an array; or res.cookies on newer base libraries),
 * honours Max-Age (wins), Expires and deletion, keeps values with '=' intact,
 * and gives the live cookies as one Cookie header, or none.
 */
'use strict';

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
// The jar in wx storage

/**
 * storage: from storage.js; key: the wx storage key of the jar
 * (<storageKey>:cookies); now: () => milliseconds since the epoch.
 */
function createCookieJar(storage, key, now) {
  /** The stored cookies that have not expired; expired ones are dropped from storage. */
  function live() {
    var stored = storage.load(key);
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
      storage.save(key, cookies);
    }
    return cookies;
  }

  /** Keep what a reply's Set-Cookie says (any reply, errors too). */
  function store(res) {
    var values = setCookiesOf(res);
    if (!values.length) {
      return;
    }
    var cookies = live();
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
    storage.save(key, cookies);
  }

  /** The Cookie header for the live cookies ("a=1; b=2"), or null. */
  function header() {
    var cookies = live();
    var pairs = [];
    for (var name in cookies) {
      if (Object.prototype.hasOwnProperty.call(cookies, name)) {
        pairs.push(name + '=' + cookies[name].value);
      }
    }
    return pairs.length ? pairs.join('; ') : null;
  }

  function forget() {
    storage.forget(key);
  }

  return {
    store: store,
    header: header,
    forget: forget
  };
}

module.exports = createCookieJar;
