// ES module resolution recorder for microprune's --run profile (registered by record.cjs).
// Writes as record.cjs does (append.cjs: one whole line per write, never through a link or a FIFO).
import { fileURLToPath } from 'node:url';
import appendLine from './append.cjs';
const log = process.env.MICROPRUNE_PROFILE_LOG;
const seen = new Set();
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (log && result.url.startsWith('file:') && !seen.has(result.url)) {
    seen.add(result.url);
    try { appendLine(log, fileURLToPath(result.url) + '\n'); } catch (e) {}
  }
  return result;
}
