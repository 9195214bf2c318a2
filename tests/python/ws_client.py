#!/usr/bin/env python3
"""A scripted WebSocket client for tern's end-to-end tests.

It uses the `websockets` library (a second WebSocket implementation,
independent of the Rust tests' tokio-tungstenite) and prints every frame it
receives as one JSON line on stdout, so the Rust test that drives it can
compare what it saw with what its other clients saw.

JSON mode (default): waits for `welcome`, sends `use` for --so, waits for the
`sync` (and, with --start-method, for a `message` op with that method), then
sends each op of --ops (a JSON array of objects) as one text frame, --delay
seconds apart. Chat mode (--subprotocol chat): sends each op of --ops (strings) as a
text frame right after the handshake.

Lines printed:
  {"op": "open", "subprotocol": ...}          after the handshake
  <the frame itself>                          JSON mode, every text frame
  {"op": "text", "text": ...}                 chat mode (or a non-JSON frame)
  {"op": "binary", "hex": ...}                a binary frame
  {"op": "sent", "count": N}                  after the scripted ops
  {"op": "closed", "code": ..., "reason": ...}
  {"op": "timeout"}                           --timeout passed first

Exit status: 0 once --until-method (a `message` op with that method) or
--until-text (a text frame with that text) arrived; 1 on timeout or an
unexpected close; 2 on bad arguments.
"""

import argparse
import asyncio
import json
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")
    sys.stdout.flush()


async def run(args):
    ops = json.loads(args.ops)
    chat = args.subprotocol == "chat"
    subprotocols = [args.subprotocol] if args.subprotocol else None
    # wss://: trust exactly the test's certificate (--cafile).
    tls = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    async with connect(
        args.url,
        ssl=tls,
        subprotocols=subprotocols,
        compression=None,
        ping_interval=None,
        max_size=None,
        open_timeout=10,
    ) as ws:
        emit({"op": "open", "subprotocol": ws.subprotocol})
        sent = False
        senders = []  # keeps the background send task referenced

        async def send_ops():
            nonlocal sent
            for i, op in enumerate(ops):
                if i > 0 and args.delay > 0:
                    await asyncio.sleep(args.delay)
                await ws.send(op if isinstance(op, str) else json.dumps(op))
            sent = True
            emit({"op": "sent", "count": len(ops)})

        if chat:
            await send_ops()
        elif args.so is None:
            await send_ops()
        try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    emit({"op": "binary", "hex": frame.hex()})
                    continue
                if chat:
                    emit({"op": "text", "text": frame})
                    if args.until_text is not None and frame == args.until_text:
                        return 0
                    continue
                try:
                    message = json.loads(frame)
                except ValueError:
                    emit({"op": "text", "text": frame})
                    continue
                emit(message)
                if not isinstance(message, dict):
                    continue
                if message.get("op") == "welcome" and args.so is not None:
                    use = {"op": "use", "so": args.so, "persistent": False}
                    await ws.send(json.dumps(use))
                elif (
                    message.get("op") == "sync"
                    and message.get("so") == args.so
                    and args.start_method is None
                    and not sent
                ):
                    await send_ops()
                elif (
                    message.get("op") == "message"
                    and message.get("method") == args.start_method
                    and not sent
                ):
                    # Concurrently with the reads: the ops interleave with
                    # what the other clients do.
                    senders.append(asyncio.get_running_loop().create_task(send_ops()))
                    sent = True
                elif (
                    message.get("op") == "message"
                    and args.until_method is not None
                    and message.get("method") == args.until_method
                ):
                    return 0
        except ConnectionClosed:
            pass
        emit({"op": "closed", "code": ws.close_code, "reason": ws.close_reason})
        return 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--subprotocol", help="offer this subprotocol (tern.v1, chat)")
    parser.add_argument("--so", help="JSON mode: the shared object to use")
    parser.add_argument("--ops", default="[]", help="JSON array of frames to send")
    parser.add_argument("--start-method", help="send the ops after a message op with this method")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between ops")
    parser.add_argument("--until-method", help="exit 0 after a message op with this method")
    parser.add_argument("--until-text", help="chat mode: exit 0 after this text")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--cafile", help="wss://: PEM file of the certificate to trust")
    args = parser.parse_args()
    try:
        status = asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except asyncio.TimeoutError:
        emit({"op": "timeout"})
        status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
