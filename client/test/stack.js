'use strict';
// The real service for one test file: `make run`'s dev/run.py (WeChat emulator, embedded
// Redis, SQLite, gunicorn with two workers) in a fresh temporary directory.
//
//   const { startStack } = require('./stack');
//   let stack;
//   before(async () => { stack = await startStack({ env: { SESSION_TTL: '3' } }); });
//   after(() => stack && stack.stop());
//   // stack.service, stack.emulator: base URLs; stack.dir: the temp dir

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const START_TIMEOUT_MS = 60000;
const STOP_TIMEOUT_MS = 15000;

// Inherited settings that would point the stack at something other than its
// own embedded defaults.
const SCRUBBED = [/^WECHAT_/, /^SECRET_KEY$/, /^REDIS_URL$/, /^DATABASE_URL$/, /^SESSION_/];

/** Free TCP ports: listen on port 0, note the port, close. */
async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      servers.push(server);
    }
    return servers.map((server) => server.address().port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

function stackEnv(extra) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!SCRUBBED.some((pattern) => pattern.test(name))) {
      env[name] = value;
    }
  }
  return Object.assign(env, {
    LOGIN_RATE_LIMIT: '100000/minute',
    LOGIN_RATE_LIMIT_OPENID: '100000/minute',
    PYTHONUNBUFFERED: '1',
  }, extra);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function startStack(options = {}) {
  const [port, emulatorPort] = await freePorts(2);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wx-session-client-'));
  const logFile = path.join(dir, 'stack.log');
  const log = fs.openSync(logFile, 'a');
  const python = process.env.PYTHON || path.join(ROOT, '.venv', 'bin', 'python');
  const env = stackEnv(Object.assign({ INSTANCE_PATH: dir }, options.env || {}));
  const child = spawn(
    python,
    ['-m', 'dev.run', '--port', String(port), '--emulator-port', String(emulatorPort)],
    { cwd: ROOT, env, stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);

  let exited = null;
  const exit = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
    child.once('error', (error) => {
      exited = { error };
      resolve(exited);
    });
  });
  // If this test process dies first, do not leave the stack behind.
  const killOnExit = () => {
    if (exited === null) {
      try { child.kill('SIGINT'); } catch { /* gone */ }
    }
  };
  process.once('exit', killOnExit);

  const stack = {
    service: `http://127.0.0.1:${port}`,
    emulator: `http://127.0.0.1:${emulatorPort}`,
    dir,
    logFile,
    pid: child.pid,
    output: () => readLog(logFile),
    async stop() {
      process.removeListener('exit', killOnExit);
      if (exited === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => {
          if (exited === null) child.kill('SIGKILL');
        }, STOP_TIMEOUT_MS);
        await exit;
        clearTimeout(timer);
      }
      if (!process.env.KEEP_STACK_DIR) {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      return exited;
    },
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited !== null) {
      const why = exited.error ? exited.error.message : `exit ${exited.code} ${exited.signal || ''}`;
      const output = readLog(logFile);
      process.removeListener('exit', killOnExit);
      if (!process.env.KEEP_STACK_DIR) fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`the stack did not start (${why}):\n${output}`);
    }
    try {
      await fetch(stack.service + '/', { signal: AbortSignal.timeout(2000) });
      return stack; // any HTTP status: the service answers a JSON 404 at /
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      const output = readLog(logFile);
      await stack.stop().catch(() => {});
      throw new Error(`the stack did not answer within ${START_TIMEOUT_MS / 1000} s:\n${output}`);
    }
    await sleep(150);
  }
}

function readLog(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '(no output captured)';
  }
}

/**
 * The stack a test file shares: started (with `options`) before its first
 * test, then `ready(stack)` runs; stopped after its last test, when no
 * secret may have appeared in a response or in the log. Returns the object
 * the started stack's fields are copied onto (empty until then).
 */
function useStack(options = {}, ready = async () => {}) {
  const { before, after } = require('node:test');
  const assert = require('node:assert/strict');
  const { leaks } = require('./wx');
  const stack = {};
  let started = false;
  before(async () => {
    Object.assign(stack, await startStack(options));
    started = true;
    await ready(stack);
  });
  after(async () => {
    if (!started) return;
    await stack.stop();
    assert.deepEqual(leaks(stack.output()), [], 'a secret appeared in a response or in the logs');
  });
  return stack;
}

module.exports = { startStack, useStack, freePorts, ROOT };
