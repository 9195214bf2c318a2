#!/usr/bin/env python3
"""A TCP relay that records both directions of every connection, for
capturing what a real RTMP client sends (the test vectors in
core/src/rtmp/vectors/ were made with it).

    python3 tests/python/rtmp_relay.py LISTEN_PORT TARGET_PORT OUT_PREFIX

Connection n is written to OUT_PREFIX.n.c2s (client to server) and
OUT_PREFIX.n.s2c; render one with `tern trace OUT_PREFIX.0.c2s`. Example:

    tern serve --rtmp-bind 127.0.0.1:19401 &
    python3 tests/python/rtmp_relay.py 19403 19401 cap/gst2sink &
    gst-launch-1.0 filesrc location=in.flv ! flvdemux name=d d.video ! queue \\
      ! h264parse ! flvmux name=m streamable=true \\
      ! rtmp2sink location=rtmp://127.0.0.1:19403/live/x d.audio ! queue ! aacparse ! m.
    tern trace cap/gst2sink.0.c2s
"""
import socket
import sys
import threading


def pump(src, dst, out):
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        if not data:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            out.close()
            return
        out.write(data)
        out.flush()
        dst.sendall(data)


def main():
    listen_port, target_port, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen_port))
    listener.listen(16)
    n = 0
    while True:
        client, _ = listener.accept()
        server = socket.create_connection(("127.0.0.1", target_port))
        c2s = open(f"{prefix}.{n}.c2s", "wb")
        s2c = open(f"{prefix}.{n}.s2c", "wb")
        n += 1
        threading.Thread(target=pump, args=(client, server, c2s), daemon=True).start()
        threading.Thread(target=pump, args=(server, client, s2c), daemon=True).start()


if __name__ == "__main__":
    main()
