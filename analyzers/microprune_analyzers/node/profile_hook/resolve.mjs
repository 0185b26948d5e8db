// ES module resolution recorder for microprune's --run profile (registered by record.cjs).
// Writes as record.cjs does: one whole line per O_APPEND write, never through a link or a FIFO.
import { openSync, writeSync, closeSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
const log = process.env.MICROPRUNE_PROFILE_LOG;
const FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT
  | (constants.O_NOFOLLOW || 0) | (constants.O_NONBLOCK || 0);
const seen = new Set();
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (log && result.url.startsWith('file:') && !seen.has(result.url)) {
    seen.add(result.url);
    let fd = -1;
    try { fd = openSync(log, FLAGS, 0o600); writeSync(fd, fileURLToPath(result.url) + '\n'); } catch (e) {}
    if (fd >= 0) { try { closeSync(fd); } catch (e) {} }
  }
  return result;
}
