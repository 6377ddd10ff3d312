"""A minimal SMTP sink for throughput runs (the role of Postfix's smtp-sink): answers every
command, counts messages, supports PIPELINING-less clients. `python fast_sink.py PORT`.
Prints one line per second: messages so far."""

import asyncio
import sys
import time


class Sink(asyncio.Protocol):
    count = 0
    first = 0.0
    last = 0.0

    def connection_made(self, transport):
        self.t = transport
        self.buf = b""
        self.data = False
        transport.write(b"220 fast-sink ESMTP\r\n")

    def data_received(self, chunk):
        self.buf += chunk
        while True:
            if self.data:
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    self.buf = self.buf[-4:] if len(self.buf) > 4 else self.buf
                    return
                self.buf = self.buf[end + 5 :]
                self.data = False
                Sink.count += 1
                Sink.last = time.time()
                Sink.first = Sink.first or Sink.last
                self.t.write(b"250 2.0.0 queued\r\n")
                continue
            line, sep, rest = self.buf.partition(b"\r\n")
            if not sep:
                return
            self.buf = rest
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.t.write(b"250-fast-sink\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n")
            elif verb == b"DATA":
                self.data = True
                self.buf = b"\r\n" + self.buf  # so a message that is only "." still ends
                self.t.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.t.write(b"221 bye\r\n")
                self.t.close()
                return
            else:
                self.t.write(b"250 OK\r\n")


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", port)
    async with server:
        while True:
            await asyncio.sleep(1)
            print(Sink.count, Sink.first, Sink.last, flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
