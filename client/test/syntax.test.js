'use strict';
// wx-session.js must be ES5 (the oldest mini program runtimes parse nothing
// newer), CommonJS, and must reach no global but the wx it is given.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const FILE = path.join(__dirname, '..', 'wx-session.js');
const source = fs.readFileSync(FILE, 'utf8');

// After these a '/' starts a regular expression, not a division.
const REGEX_AFTER = new Set(['', '(', ',', '=', ':', '[', '!', '&', '|', '?', '{', '}', ';', '+', '-', '*', '%', '<', '>', '~', '^']);
const REGEX_AFTER_WORDS = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else']);

/** The source with comments removed and string, template and regex literals emptied. */
function stripLiterals(text) {
  let out = '';
  let i = 0;
  const lastSignificant = () => {
    const trimmed = out.replace(/\s+$/, '');
    const word = /([A-Za-z_$][\w$]*)$/.exec(trimmed);
    if (word) return { char: trimmed.slice(-1), word: word[1] };
    return { char: trimmed.slice(-1), word: null };
  };
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      assert.notEqual(end, -1, 'unterminated comment');
      out += ' ';
      i = end + 2;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\') j++;
        j++;
      }
      // Keep the backtick itself visible: it must not appear at all.
      out += c === '`' ? '``' : c + c;
      i = j + 1;
      continue;
    }
    if (c === '/') {
      const before = lastSignificant();
      const isRegex = before.word ? REGEX_AFTER_WORDS.has(before.word) : REGEX_AFTER.has(before.char);
      if (isRegex) {
        let j = i + 1;
        let inClass = false;
        while (j < text.length) {
          const d = text[j];
          if (d === '\\') { j += 2; continue; }
          if (d === '[') inClass = true;
          else if (d === ']') inClass = false;
          else if (d === '/' && !inClass) break;
          else if (d === '\n') assert.fail(`unterminated regex at ${i}`);
          j++;
        }
        j++;
        while (j < text.length && /[a-z]/i.test(text[j])) j++;
        out += '/re/';
        i = j;
        continue;
      }
    }
    out += c;
    i++;
  }
  return out;
}

const code = stripLiterals(source);

test('the stripper itself: comments, strings and regexes go, code stays', () => {
  const sample = "var a = 'x => y'; // let\n/* const */ var r = /`[/]\\//g; var b = a / 2; return `t`";
  const stripped = stripLiterals(sample);
  assert.ok(!stripped.includes('=>'));
  assert.ok(!/\blet\b|\bconst\b/.test(stripped));
  assert.ok(stripped.includes('var b = a / 2'));
  assert.ok(stripped.includes('``'), 'template literals stay detectable');
});

const FORBIDDEN = [
  ['arrow functions', /=>/],
  ['template literals', /`/],
  ['let', /\blet\b/],
  ['const', /\bconst\b/],
  ['class', /\bclass\b/],
  ['async', /\basync\b/],
  ['await', /\bawait\b/],
  ['spread / rest', /\.\.\./],
  ['generators', /function\s*\*/],
  ['for-of', /\bfor\s*\([^;)]*\bof\b/],
  ['import / export', /^\s*(import|export)\b/m],
];

for (const [label, pattern] of FORBIDDEN) {
  test(`wx-session.js has no ${label}`, () => {
    const match = pattern.exec(code);
    assert.equal(match, null, match && `found ${JSON.stringify(match[0])} near: ${code.slice(Math.max(0, match.index - 60), match.index + 60)}`);
  });
}

test('new Function(source) compiles it', () => {
  assert.doesNotThrow(() => new Function('module', 'exports', 'require', source));
});

test('it is CommonJS and reaches no global but wx (runs in a bare context)', async () => {
  // A context with ECMAScript built-ins only: no setTimeout, console, process,
  // require, fetch or wx. The module must load and work with an injected wx.
  const context = vm.createContext({ module: { exports: {} } });
  vm.runInContext(`(function (module, exports) {${source}\n})(module, module.exports)`, context, { filename: FILE });
  const createSession = context.module.exports;
  assert.equal(typeof createSession, 'function');
  assert.equal(typeof createSession.ServiceError, 'function');
  assert.throws(() => createSession({ baseURL: 'https://svc.test' }), /wx/, 'no global wx to fall back on');

  const storage = {};
  const sent = [];
  const wx = {
    setStorageSync: (k, v) => { storage[k] = JSON.parse(JSON.stringify(v)); },
    getStorageSync: (k) => (k in storage ? JSON.parse(JSON.stringify(storage[k])) : ''),
    removeStorageSync: (k) => { delete storage[k]; },
    login: (o) => Promise.resolve().then(() => o.success({ code: 'c1' })),
    checkSession: (o) => Promise.resolve().then(() => o.success({})),
    request: (o) => {
      sent.push(o);
      Promise.resolve().then(() => {
        if (o.url.endsWith('/oauth/login')) {
          o.success({ statusCode: 200, header: { 'Set-Cookie': 'sid=tok; Max-Age=60' }, data: { code: 0, data: { token: 'tok', expiresIn: 60 } } });
        } else if (o.header.Cookie === 'sid=tok') {
          o.success({ statusCode: 200, header: {}, data: { code: 0, data: { nickName: 'n' } } });
        } else {
          o.success({ statusCode: 401, header: {}, data: { code: 2001, error: 'unauthorized', message: '' } });
        }
      });
    },
  };
  const session = createSession({ baseURL: 'https://svc.test', wx });
  const order = [];
  session.ready((user) => order.push(user.nickName));
  const user = await session.launch();
  assert.equal(user.nickName, 'n');
  await session.ready(() => {});
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ['n']);
  assert.deepEqual(sent.map((o) => o.url), ['https://svc.test/oauth/login', 'https://svc.test/user/info']);
  await session.logout();
  assert.equal(wx.getStorageSync('wx-session:token'), '');
});
