// ES module resolution recorder for microprune's --run profile (registered by record.cjs).
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const log = process.env.MICROPRUNE_PROFILE_LOG;
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  try { if (log && result.url.startsWith('file:')) appendFileSync(log, fileURLToPath(result.url) + '\n'); } catch (e) {}
  return result;
}
