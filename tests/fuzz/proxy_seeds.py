#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the hand-made seed corpus of fuzz_proxy.c into tests/fuzz/corpus/proxy/ (the input
# format is described at the top of fuzz_proxy.c). Run from anywhere:
#   python3 tests/fuzz/proxy_seeds.py
# Each seed is one scenario; the names say which. Keep them few and small: libFuzzer grows
# its own corpus in tests/fuzz/bin/work/proxy/.
import os

OPEN, JWT, LIMITS, ALL = 0, 1, 2, 3
PLAIN = 12          # bits 2-3 = 3: the plain (redirect) listener
V6 = 16             # the client's address is IPv6

# HS256 tokens for the key in fuzz_proxy.c (HS256_SECRET)
TOK = (b'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMCwicm9sZSI6ImFkbWluIn0.'
       b'a04jFi8FIt_8-sNIeROTt2MwG_AjaSOmScl1C5rGFIw')
TOK_BOB = (b'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib2IiLCJleHAiOjQxMDI0NDQ4MDB9.'
           b'BPPB_6VlMkSg2iUWShbDoEqvQbGfAsnCm_DLQEGHYr0')
TOK_EXPIRED = (b'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTAwMDAwMDAwMH0.'
               b'DOm39C9Va2qBoOo3eI-YdewFtyqOfoQbfvlsWJvKx1s')
TOK_BADSIG = (b'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.'
              b'6stA2kC20TMQ6R_bjGKmavM6ihtrvlrYZ6_5BCcmbeQ')


def C(b):        # client bytes
    return bytes([0, len(b)]) + b if len(b) < 256 else bytes([1, len(b) & 255, len(b) >> 8]) + b


def A(b):        # upstream answer (to the next connection with request bytes)
    return bytes([2, len(b)]) + b if len(b) < 256 else bytes([7, len(b) & 255, len(b) >> 8]) + b


def M(b):        # more bytes on the connection last answered
    assert len(b) < 256
    return bytes([3, len(b)]) + b


UCLOSE, URESET, RUN, SHUT, RESET = b'\x04', b'\x0c', b'\x05', b'\x06', b'\x0e'
UPAUSE, CPAUSE = b'\x14', b'\x16'     # the upstream / the client stops (or starts again) reading


def CFILL(kib):      # client filler: kib KiB of 'a' (tag 0xf9: in 4 KiB units)
    return bytes([0xf9, kib // 4 & 255, kib // 4 >> 8])


def UFILL(kib):      # upstream filler, sent like M(): kib KiB of 'b' (tag 0xff: in 4 KiB units)
    return bytes([0xff, kib // 4 & 255, kib // 4 >> 8])


def req(method, path, headers=(), body=b'', version=b'1.1', host=b'api.example.com'):
    h = method + b' ' + path + b' HTTP/' + version + b'\r\n'
    if host is not None:
        h += b'Host: ' + host + b'\r\n'
    for n, v in headers:
        h += n + b': ' + v + b'\r\n'
    if body and not any(n.lower() in (b'content-length', b'transfer-encoding') for n, _ in headers):
        h += b'Content-Length: ' + str(len(body)).encode() + b'\r\n'
    return h + b'\r\n' + body


def resp(status, headers=(), body=b'', cl=True):
    h = b'HTTP/1.1 ' + status + b'\r\n'
    for n, v in headers:
        h += n + b': ' + v + b'\r\n'
    if cl:
        h += b'Content-Length: ' + str(len(body)).encode() + b'\r\n'
    return h + b'\r\n' + body


GET = req(b'GET', b'/')
OK = resp(b'200 OK', [(b'Content-Type', b'application/json'), (b'X-Powered-By', b'Express')], b'{"ok":true}')
CHUNKED = resp(b'200 OK', [(b'Transfer-Encoding', b'chunked')], b'5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', cl=False)
JSON = [(b'Content-Type', b'application/json')]
STACK = (b'{"message":"boom","stack":"Error: boom\\n    at Object.<anonymous> (/srv/app/server.js:10:5)\\n'
         b'    at Module._compile (node:internal/modules/cjs/loader:1256:14)"}')
WS = [(b'Connection', b'Upgrade'), (b'Upgrade', b'websocket'), (b'Sec-WebSocket-Key', b'dGhlIHNhbXBsZSBub25jZQ=='),
      (b'Sec-WebSocket-Version', b'13')]
PREFLIGHT = [(b'Origin', b'https://app.example.com'), (b'Access-Control-Request-Method', b'POST'),
             (b'Access-Control-Request-Headers', b'content-type, authorization')]

seeds = {
    # framing of the request
    'get_cl': [OPEN, C(GET), A(OK), RUN],
    'get_chunked_answer': [OPEN, C(GET), A(CHUNKED), RUN],
    'post_cl': [OPEN, C(req(b'POST', b'/items', JSON, b'{"a":1}')), A(resp(b'201 Created', JSON, b'{"id":7}')), RUN],
    'post_chunked': [OPEN, C(req(b'POST', b'/upload', [(b'Transfer-Encoding', b'chunked')], b'4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n')),
                     A(OK), RUN],
    'post_chunked_pieces': [OPEN, C(req(b'POST', b'/upload', [(b'Transfer-Encoding', b'chunked')], b'4\r\nab')), RUN,
                            C(b'cd\r\n0\r\n\r\n'), A(OK), RUN],
    'expect_continue': [OPEN, C(req(b'PUT', b'/f', [(b'Expect', b'100-continue'), (b'Content-Length', b'5')])), RUN,
                        C(b'hello'), A(OK), RUN],
    'keepalive_two': [OPEN, C(GET), A(OK), RUN, C(req(b'GET', b'/b')), A(CHUNKED), RUN],
    'pipelined_three': [OPEN, C(GET + req(b'HEAD', b'/h') + req(b'DELETE', b'/d')), A(OK), A(OK), A(resp(b'204 No Content', cl=False)), RUN],
    'http10_close_delimited': [OPEN, C(req(b'GET', b'/old', version=b'1.0')),
                               A(resp(b'200 OK', [(b'Content-Type', b'text/plain')], b'until close', cl=False)), UCLOSE, RUN],
    'half_close_then_answer': [OPEN, C(GET), SHUT, RUN, A(OK), RUN],
    'client_reset_mid_body': [OPEN, C(req(b'POST', b'/slow', [(b'Content-Length', b'100')], b'part')), RUN, RESET, RUN],
    'bad_framing_cl_te': [OPEN, C(req(b'POST', b'/', [(b'Content-Length', b'5'), (b'Transfer-Encoding', b'chunked')], b'0\r\n\r\n')), RUN],
    'bad_framing_two_hosts': [OPEN, C(b'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'), RUN],
    'bad_framing_obs_fold': [OPEN, C(b'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n'), RUN],
    'trace_and_dotdot': [OPEN, C(req(b'TRACE', b'/') + req(b'GET', b'/a/../../etc/passwd')), RUN],
    # upstream answers
    'up_1xx_then_final': [OPEN, C(GET), A(b'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n'), RUN,
                          M(b'HTTP/1.1 102 Processing\r\n\r\n' + OK), RUN],
    'up_close_delimited_body': [OPEN, C(GET), A(resp(b'200 OK', [], b'streamed', cl=False)), RUN, UCLOSE, RUN],
    'up_close_delimited_empty': [OPEN, C(GET), A(resp(b'200 OK', cl=False)), UCLOSE, RUN],
    'up_204_stray_body': [OPEN, C(GET), A(resp(b'204 No Content', cl=False) + b'stray'), RUN],
    'up_304_stray_body': [OPEN, C(GET), A(resp(b'304 Not Modified', [(b'ETag', b'"x"')], cl=False) + b'stray body'), RUN],
    'up_close_mid_head': [OPEN, C(GET), A(b'HTTP/1.1 200 OK\r\nContent-Le'), UCLOSE, RUN],
    'up_close_mid_body': [OPEN, C(GET), A(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'), RUN, UCLOSE, RUN],
    'up_close_unanswered': [OPEN, C(GET), UCLOSE, RUN],
    'up_reset_unanswered': [OPEN, C(GET), URESET, RUN],
    'up_garbage': [OPEN, C(GET), A(b'\x00\xffNOT HTTP\r\n\r\n'), RUN],
    'up_500_stack_scrubbed': [JWT, C(req(b'GET', b'/api/public/x')), A(resp(b'500 Internal Server Error', JSON, STACK)), RUN],
    'up_404_stack_scrubbed': [ALL, C(GET), A(resp(b'404 Not Found', JSON, STACK)), RUN],
    'websocket': [OPEN, C(req(b'GET', b'/ws/chat', WS)),
                  A(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                    b'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi'), RUN,
                  C(b'\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58'), M(b'\x81\x03bye'), RUN, UCLOSE, RUN],
    'up_101_unasked': [OPEN, C(GET), A(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n'), RUN],
    # policies
    'cors_preflight': [JWT, C(req(b'OPTIONS', b'/api/x', PREFLIGHT)), RUN],
    'cors_rejected_origin': [JWT, C(req(b'GET', b'/api/public/x', [(b'Origin', b'https://evil.example')])), RUN],
    'jwt_bearer_proxied': [JWT | V6, C(req(b'GET', b'/api/me', [(b'Authorization', b'Bearer ' + TOK),
                                                               (b'Origin', b'https://app.example.com'),
                                                               (b'X-Forwarded-For', b'198.51.100.1, 10.0.0.2'),
                                                               (b'X-Request-Id', b'req-abc.123_x')])),
                           A(resp(b'200 OK', JSON + [(b'Access-Control-Allow-Origin', b'*')], b'{"me":"alice"}')), RUN],
    'jwt_missing_expired_badsig': [JWT, C(req(b'GET', b'/api/me') + req(b'GET', b'/api/me', [(b'Authorization', b'Bearer ' + TOK_EXPIRED)])
                                          + req(b'GET', b'/api/opt/x', [(b'Cookie', b'access_token=' + TOK_BADSIG)])), RUN],
    'limits_rate_and_apikey': [LIMITS, C(req(b'GET', b'/api/x', [(b'X-Api-Key', b'k1')]) * 4), A(OK), A(OK), A(OK), RUN],
    'limits_body_schema': [LIMITS, C(req(b'POST', b'/api/users', JSON, b'{"name":"ann","age":3}')
                                     + req(b'POST', b'/api/users', JSON, b'{"name":"ann","__proto__":{}}')
                                     + req(b'PUT', b'/api/users', [(b'Content-Type', b'text/plain')], b'x')), A(OK), RUN],
    'limits_lockout': [LIMITS, C(req(b'POST', b'/api/auth/login', JSON, b'{"email":"a@b.c","password":"x"}') * 3),
                       A(resp(b'401 Unauthorized', JSON, b'{}')), A(resp(b'401 Unauthorized', JSON, b'{}')), RUN],
    'limits_probe_ban': [LIMITS | V6, C(req(b'GET', b'/.env') + req(b'GET', b'/.git/config') + GET), RUN],
    'all_user_limits': [ALL, C(req(b'POST', b'/api/users', [(b'Authorization', b'Bearer ' + TOK_BOB)] + JSON, b'{"name":"bob"}')
                               + req(b'GET', b'/api/x', [(b'Authorization', b'Bearer ' + TOK)])), A(OK), A(OK), RUN],
    # watermarks: 1 MiB each way with the reader stopped, then started again
    'bulk_answer_client_slow': [OPEN, C(GET), CPAUSE, A(b'HTTP/1.1 200 OK\r\nContent-Length: 786432\r\n\r\n'),
                                UFILL(768), RUN, CPAUSE, RUN],
    'bulk_answer_chunked': [OPEN, C(GET), A(b'HTTP/1.1 200 OK\r\n\r\n'), UFILL(512), RUN, UCLOSE, RUN],
    'bulk_body_upstream_slow': [OPEN, UPAUSE, C(req(b'POST', b'/up', [(b'Transfer-Encoding', b'chunked')]) + b'c0000\r\n'),
                                CFILL(768), C(b'\r\n0\r\n\r\n'), RUN, UPAUSE, RUN, A(OK), RUN],
    'plain_redirect_healthz': [OPEN | PLAIN, C(req(b'GET', b'/x?y=1') + req(b'GET', b'/healthz')), RUN],
    # regressions: bugs found by (or known when writing) this target, each fixed in src/; a fix
    # undone makes the replay abort (a reproducer of each is in the fuzz-findings notes)
    # a trusted X-Request-Id of 64 characters is kept whole (it overflowed char id[33]); 65 is replaced
    'regress_request_id_64': [JWT, C(req(b'GET', b'/api/public/x', [(b'X-Request-Id', b'a' * 64)])
                                     + req(b'GET', b'/api/public/y', [(b'X-Request-Id', b'b' * 65)])), A(OK), A(OK), RUN],
    # the pooled connection is closed by the upstream under the second request: the retry
    # must finish the request (it answered 502 and the client connection hung)
    'regress_retry_pooled_closed': [OPEN, C(GET), A(OK), RUN, C(req(b'GET', b'/b')), RUN, UCLOSE, RUN],
    # the client half-closes behind a complete GET and a POST cut short: once the GET is
    # answered the POST is aborted at once (it waited for idle_timeout)
    'regress_half_close_pipelined_cut': [JWT, C(req(b'GET', b'/api/public/a') + req(b'POST', b'/api/x', [(b'Content-Length', b'10')], b'abc')),
                                         RUN, SHUT, RUN, A(resp(b'200 OK')), RUN],
    # an upstream 100 Continue is not the final answer (it was forwarded as one)
    'regress_up_100_continue': [OPEN, C(GET), A(b'HTTP/1.1 100 Continue\r\n\r\n'), RUN],
    # 1xx, 204 and 304 end with their head whatever framing they announce: with a
    # Transfer-Encoding other than chunked up_feed spun for ever; with Content-Length the
    # "body" was written raw into the client's stream
    'regress_up_204_te_gzip': [OPEN, C(GET), A(b'HTTP/1.1 204 No Content\r\nTransfer-Encoding: gzip\r\n\r\n'), RUN],
    'regress_up_100_te_other': [OPEN, C(GET), A(b'HTTP/1.1 100 OK\r\nTransfer-Encoding: chu@ked\r\n\r\n' + OK), RUN],
    'regress_up_103_cl_body': [OPEN, C(GET), A(b'HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\nHELLO' + OK), RUN],
    'regress_up_304_cl_body': [OPEN, C(GET), A(resp(b'304 Not Modified', [(b'Content-Length', b'5')], cl=False) + b'HELLO'), RUN],
    # the upstream answers 404 early (Express, an unknown route) while the chunked body is still
    # coming, scrub peeks at the answer's body, then a bad chunk: the 400 was never sent and the
    # connection never freed (req_fail_head released the upstream under the peek)
    'regress_peek_body_error': [OPEN, C(req(b'POST', b'/upload', [(b'Transfer-Encoding', b'chunked')]) + b'4\r\nab'),
                                A(b'HTTP/1.1 404 X\r\n\r\n{"a":1}'), RUN, C(b'cdX'), RUN],
    # an early answer that fits the peek window before the request body is whole must say
    # Connection: close (it went out keep-alive and the rest of the body was never read)
    'regress_early_peek_body_unread': [OPEN, C(req(b'POST', b'/upload', [(b'Content-Length', b'10')]) + b'abc'),
                                       A(b'HTTP/1.1 404 X\r\nContent-Length: 7\r\n\r\n{"a":1}'), RUN, C(b'def'), RUN],
    # a 101 then the upstream's close, both before the tunnel starts: the EOF seen by the sock
    # before tunnel_start was ignored and the tunnel stayed open for ever
    'regress_tunnel_eof_before_start': [OPEN, C(req(b'GET', b'/ws/chat', WS)),
                                        A(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n' + b'x' * 65),
                                        UFILL(36), UCLOSE],
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'proxy')
    os.makedirs(out, exist_ok=True)
    for name, parts in seeds.items():
        data = bytes([parts[0]]) + b''.join(parts[1:])
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print(f'{len(seeds)} seeds in {out}')


if __name__ == '__main__':
    main()
