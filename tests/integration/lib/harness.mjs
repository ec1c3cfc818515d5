// The one import for test files.
export { startVisor, runVisor, writeConfigFile, freePort, VISOR_BIN, SANITIZED } from './visor.mjs';
export { startUpstream, startRawUpstream, rawResponder, headPath, echoHandler, deadPort, headerAll, headerPairs } from './upstream.mjs';
export { startRedis, redisCmd, redisCmdVia } from './redis.mjs';
export { https, http, keepAliveAgent, tlsConnect, rawConnect, rawTls, rawTcp, hasResponses } from './clients.mjs';
export { parseResponses } from './httpparse.mjs';
export { getCerts, ALT_NAME } from './certs.mjs';
export { SLOW, REPO, delay, dedent, until, cleanupAll, track } from './util.mjs';
export * from './expect.mjs';

import { dedent } from './util.mjs';

// The minimal config every test starts from: one HTTPS listener, the default certificate,
// one upstream. `extra` is more top-level YAML; `upstream`/`client`/`listen` add keys to those
// sections (YAML text, one key a line, not indented).
export function minimalYaml({ upstream, listen = '', upstreamExtra = '', client = '', tls = '', extra = '' }) {
  const ind = (t, n) => dedent(t).trimEnd().split('\n').map((l) => ' '.repeat(n) + l).join('\n');
  let y = 'listen:\n  https: {{HTTPS}}\n';
  if (listen.trim()) y += ind(listen, 2) + '\n';
  y += 'tls:\n  certificates:\n    - cert: {{CERT}}\n      key: {{KEY}}\n';
  if (tls.trim()) y += ind(tls, 2) + '\n';
  const servers = Array.isArray(upstream) ? upstream : [upstream];
  y += `upstream:\n  servers: [${servers.join(', ')}]\n`;
  if (upstreamExtra.trim()) y += ind(upstreamExtra, 2) + '\n';
  if (client.trim()) y += 'client:\n' + ind(client, 2) + '\n';
  if (extra.trim()) y += dedent(extra);
  return y;
}
