// One whole line per O_APPEND write to the recorder's log, shared by record.cjs and resolve.mjs.
// The log is opened by name for each line, never through a link and never waiting on a FIFO:
// the run owns the scratch directory it is in. fs's own functions are taken when this loads,
// before record.cjs wraps them, so writing the log is never recorded. Never throws.
'use strict';
const { openSync, writeSync, closeSync, constants } = require('fs');

const FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT
  | (constants.O_NOFOLLOW || 0) | (constants.O_NONBLOCK || 0);

module.exports = function appendLine(log, line) {
  let fd = -1;
  try { fd = openSync(log, FLAGS, 0o600); writeSync(fd, line); } catch (e) {}
  if (fd >= 0) { try { closeSync(fd); } catch (e) {} }
};
