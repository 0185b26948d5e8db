// microprune's run-time recorder (`microprune trace APP --run CMD`), preloaded with --require.
// Records every module file CommonJS loads, every ES module the loader resolves (a registered
// resolve hook), every path fs reads (callback, sync and promise forms) and every worker
// thread's script, appending them to MICROPRUNE_PROFILE_LOG. Never throws.
//
// Node applies the preload to worker threads too, but a worker rarely sees its `exit` event:
// the main thread's process.exit() or worker.terminate() ends it first. So a worker writes
// each path the moment it sees it (one short O_APPEND write, whole lines), the main thread at exit.
'use strict';
const fs = require('fs');
const Module = require('module');
const threads = require('worker_threads');
const log = process.env.MICROPRUNE_PROFILE_LOG;
const seen = new Set();
const eager = !threads.isMainThread;
const write = (text) => { try { fs.appendFileSync(log, text); } catch (e) {} };
const add = (p) => { if (!seen.has(p)) { seen.add(p); if (eager) write(p + '\n'); } };
const note = (p) => {
  try {
    if (typeof p === 'string' && p.startsWith('/')) add(p);
    else if (p instanceof URL && p.protocol === 'file:') add(decodeURIComponent(p.pathname));
    else if (typeof p === 'string' && p.startsWith('file:')) add(decodeURIComponent(new URL(p).pathname));
  } catch (e) {}
};
const wrap = (owner, names) => {
  for (const name of names) {
    const original = owner[name];
    if (typeof original === 'function') owner[name] = function (p, ...rest) { note(p); return original.call(this, p, ...rest); };
  }
};
if (log) {
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (...args) { const r = resolve.apply(this, args); note(r); return r; };
  const reads = ['readFile', 'open', 'stat', 'lstat', 'access', 'readdir', 'realpath', 'opendir'];
  wrap(fs, [...reads, ...reads.map((n) => n + 'Sync'), 'createReadStream', 'existsSync', 'exists']);
  if (fs.promises) wrap(fs.promises, reads);            // the same object as require('fs/promises')
  const Worker = threads.Worker;
  threads.Worker = class extends Worker {
    constructor(filename, options) { if (!(options && options.eval)) note(filename); super(filename, options); }
  };
  // ES modules import builtins' named exports as they were at startup unless told
  try { Module.syncBuiltinESMExports(); } catch (e) {}
  const dump = () => {
    if (eager || !seen.size) return;
    write([...seen].join('\n') + '\n');
    seen.clear();
  };
  process.on('exit', dump);
  if (!eager) {
    for (const signal of ['SIGTERM', 'SIGINT']) {
      // record, then behave as before: exit unless the app handles the signal itself
      process.once(signal, () => { dump(); if (process.listenerCount(signal) === 0) process.exit(128 + (signal === 'SIGTERM' ? 15 : 2)); });
    }
  }
  try {
    if (typeof Module.register === 'function') Module.register(require('url').pathToFileURL(__dirname + '/resolve.mjs'));
  } catch (e) {}
}
