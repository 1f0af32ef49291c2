#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Servers of the selftests' "world" netns: TCP/UDP echo, a hold-and-report-EOF service, its query port.

Usage: world_server.py ADDR READY_FILE
  tcp ADDR:7     echo every byte back until the client's EOF, then close
  udp ADDR:7     echo every datagram to its sender
  tcp ADDR:7002  read a token line, then read (never write) until EOF; remember the token as closed
  tcp ADDR:7003  read "TOKEN WAIT_MS"; answer "closed" once TOKEN's connection saw EOF, else "open"
READY_FILE is created once every port listens.
"""
import socket
import socketserver
import sys
import threading

closed = set()
closed_cv = threading.Condition()


def read_line(rfile):
    return rfile.readline(256).decode(errors="replace").strip()


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class UdpEcho(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)


class Hold(socketserver.StreamRequestHandler):
    def handle(self):
        token = read_line(self.rfile)
        while self.rfile.read1(65536):
            pass
        with closed_cv:
            closed.add(token)
            closed_cv.notify_all()


class Query(socketserver.StreamRequestHandler):
    def handle(self):
        token, _, wait_ms = read_line(self.rfile).partition(" ")
        with closed_cv:
            closed_cv.wait_for(lambda: token in closed, timeout=int(wait_ms or 0) / 1000)
            state = "closed" if token in closed else "open"
        self.wfile.write((state + "\n").encode())


class TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        """A reset from a killed test client is expected: no traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class UdpServer(socketserver.ThreadingUDPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    addr, ready = sys.argv[1], sys.argv[2]
    servers = [TcpServer((addr, 7), Echo), UdpServer((addr, 7), UdpEcho),
               TcpServer((addr, 7002), Hold), TcpServer((addr, 7003), Query)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    open(ready, "w").close()
    threading.Event().wait()


if __name__ == "__main__":
    main()
