#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""asyncio and selectors event loops on (under rsys: remote) TCP sockets; prints a transcript to diff.

Usage: wait_asyncio.py ECHO_ADDR   (a TCP echo server on port 7, the world netns of lib.sh)
"""
import asyncio
import selectors
import socket
import sys

ip = sys.argv[1]


async def echo_lines():
    r, w = await asyncio.open_connection(ip, 7)
    out = []
    for i in range(3):
        w.write(b"hello %d\n" % i)
        await w.drain()
        out.append((await asyncio.wait_for(r.readline(), 5)).decode().strip())
    # a local timer racing the idle remote socket: the local half wins
    await asyncio.sleep(0.05)
    w.close()
    await w.wait_closed()
    return out


print("asyncio", asyncio.run(echo_lines()))

sel = selectors.DefaultSelector()
print("selector", type(sel).__name__)
s = socket.create_connection((ip, 7))
s.setblocking(False)
sel.register(s, selectors.EVENT_READ, "user data kept")
print("idle remote socket times out", sel.select(0.1))
s.send(b"x")
print("readable", [(k.data, m) for k, m in sel.select(5)], s.recv(10))
sel.modify(s, selectors.EVENT_WRITE, "writer")
print("writable", [(k.data, m) for k, m in sel.select(5)])
sel.unregister(s)
s.close()
