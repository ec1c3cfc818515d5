/* SPDX-License-Identifier: MIT
 * tunnel — after a 101 Switching Protocols (WebSocket), the client and upstream sockets are
 * spliced: bytes flow both ways unchanged, with the same watermark backpressure as bodies,
 * until either side closes or the tunnel is idle for client.idle_timeout. The handshake
 * request went through the whole filter chain first (auth, CORS, rate limits), and the
 * upstream connection is never reused afterwards.
 *
 * Ownership: the tunnel lives inside its request (r->tunnel); the request stays attached to
 * the connection until the connection closes, which frees both. Worker thread only.
 */
#ifndef VISOR_TUNNEL_H
#define VISOR_TUNNEL_H

struct req;

/* Whether the request asks for a protocol switch visor tunnels: GET, HTTP/1.1,
 * Connection: upgrade and exactly `Upgrade: websocket`. Other upgrades (h2c) are stripped. */
int  tunnel_wanted(const struct req *r);
/* The 101 head has been queued to the client: take over both sockets. */
void tunnel_start(struct req *r);

#endif
