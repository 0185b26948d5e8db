// microprune's run-time recorder (`microprune trace APP --run CMD`), preloaded with --require.
// Records every module file CommonJS loads, every ES module the loader resolves (a registered
// resolve hook), every path fs reads (callback, sync and promise forms; string, Buffer or URL,
// relative ones against the working directory of the moment) and every worker thread's
// script, appending them to MICROPRUNE_PROFILE_LOG. Never throws, and changes nothing the app
// sees: no signal handler, no exit listener.
//
// Each path is written the moment it is first seen (append.cjs: one short O_APPEND write of a
// whole line): a worker ended by worker.terminate(), an app that calls process.reallyExit() or
// removes every exit listener, or a process killed with SIGKILL has written what it read so far.
'use strict';
const fs = require('fs');
const path = require('path');
const Module = require('module');
const threads = require('worker_threads');
const appendLine = require('./append.cjs');      // before fs is wrapped
const log = process.env.MICROPRUNE_PROFILE_LOG;
const seen = new Set();               // paths as latin1 strings of their bytes: any name survives

const add = (bytes) => {
  const key = bytes.toString('latin1');
  if (seen.has(key)) return;
  seen.add(key);
  appendLine(log, Buffer.concat([bytes, Buffer.from('\n')]));
};
const absolute = (text) => Buffer.from(path.resolve(text), 'utf8');
const note = (p) => {
  try {
    if (typeof p === 'string') {
      if (p.startsWith('file:')) add(Buffer.from(decodeURIComponent(new URL(p).pathname), 'utf8'));
      else if (p && !p.includes('\0')) add(absolute(p));
    } else if (Buffer.isBuffer(p)) {
      // a name that is not UTF-8 comes as bytes: written as they are (the log is bytes too)
      add(p[0] === 0x2f ? Buffer.from(p) : Buffer.concat([Buffer.from(process.cwd() + '/', 'utf8'), p]));
    } else if (p instanceof URL && p.protocol === 'file:') {
      add(Buffer.from(decodeURIComponent(p.pathname), 'utf8'));
    }
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
  try {
    if (typeof Module.register === 'function') Module.register(require('url').pathToFileURL(__dirname + '/resolve.mjs'));
  } catch (e) {}
}
