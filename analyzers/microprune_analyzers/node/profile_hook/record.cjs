// microprune's run-time recorder (`microprune trace APP --run CMD`), preloaded with --require.
// Records every module file CommonJS loads, every ES module the loader resolves (a registered
// resolve hook), and every path fs reads, appending them to MICROPRUNE_PROFILE_LOG. Never throws.
'use strict';
const fs = require('fs');
const Module = require('module');
const log = process.env.MICROPRUNE_PROFILE_LOG;
const seen = new Set();
const note = (p) => { try { if (typeof p === 'string' && p.startsWith('/')) seen.add(p); else if (p instanceof URL && p.protocol === 'file:') seen.add(decodeURIComponent(p.pathname)); } catch (e) {} };
if (log) {
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (...args) { const r = resolve.apply(this, args); note(r); return r; };
  for (const name of ['readFileSync', 'readFile', 'openSync', 'open', 'createReadStream', 'statSync', 'stat',
                      'existsSync', 'readdirSync', 'readdir', 'accessSync', 'access', 'realpathSync']) {
    const original = fs[name];
    if (typeof original === 'function') fs[name] = function (p, ...rest) { note(p); return original.call(this, p, ...rest); };
  }
  const dump = () => {
    try { if (seen.size) fs.appendFileSync(log, [...seen].join('\n') + '\n'); seen.clear(); } catch (e) {}
  };
  process.on('exit', dump);
  for (const signal of ['SIGTERM', 'SIGINT']) {
    // record, then behave as before: exit unless the app handles the signal itself
    process.once(signal, () => { dump(); if (process.listenerCount(signal) === 0) process.exit(128 + (signal === 'SIGTERM' ? 15 : 2)); });
  }
  try {
    if (typeof Module.register === 'function') Module.register(require('url').pathToFileURL(__dirname + '/resolve.mjs'));
  } catch (e) {}
}
