"""connscope's driver for real httpx (`client = "httpx"`): runs the closed load model with
`httpx.AsyncClient` and reports one line per finished request on stdout.

Protocol (all on the pipes, nothing on argv or in a file):
- stdin, line 1: the JSON config (URL, method, headers, body as base64, limits, timeouts, http2,
  verify, proxy, reuse_client, the stages, max_requests, think_time, graceful_stop).
- stdout: {"ready": {"httpx": VERSION}} once the client is built, or {"error": MESSAGE} and exit.
- stdin, line 2: "go"; the driver's clock (t0) starts there.
- stdout, per finished request, a JSON array (times in microseconds since t0):
  [end, total, pool_wait, conn, tcp, tls, age, idle, ttfb, body, status, bytes, class, message]
  (conn: 0 none, 1 opened by this request, 2 reused; tcp/tls/ttfb/body/status/class/message may
  be null).
- stdout, last: {"end": {"aborted": N, "interrupted": BOOL}}.
- stdin closing (or SIGTERM) interrupts the run at once.

It does not retry (retries stay connscope's), aggregate, or print anything else on stdout: logs go
to stderr. One process; a Python client tops out at a few thousand requests per second.
"""

import asyncio
import base64
import errno
import json
import signal
import ssl
import socket
import sys
import threading
import time


def log(msg):
    print(f"httpx driver: {msg}", file=sys.stderr, flush=True)


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")


def level_at(stages, t):
    """The plan's level t seconds in, ramps interpolated; 0 after the end (LoadPlan::level_at)."""
    start = 0.0
    prev = 0.0
    for s in stages:
        end = start + s["duration"]
        if t < end:
            into = t - start
            if into < s["ramp"]:
                return prev + (s["level"] - prev) * (into / s["ramp"])
            return s["level"]
        prev = s["level"]
        start = end
    return 0.0


def errnos(exc):
    """The OS error numbers and exception types in an exception's cause/context chain."""
    seen = []
    nums = set()
    types = []
    e = exc
    while e is not None and id(e) not in seen:
        seen.append(id(e))
        types.append(e)
        if isinstance(e, OSError) and e.errno is not None:
            nums.add(e.errno)
        e = e.__cause__ or e.__context__
    return nums, types


def classify(httpx, exc):
    """The connscope ErrorKind name for an httpx exception."""
    nums, chain = errnos(exc)
    if isinstance(exc, httpx.PoolTimeout):
        return "PoolTimeout"
    if isinstance(exc, httpx.ConnectTimeout):
        return "ConnectTimeout"
    if isinstance(exc, httpx.ReadTimeout):
        return "ReadTimeout"
    if isinstance(exc, httpx.WriteTimeout):
        return "WriteTimeout"
    if errno.EMFILE in nums or errno.ENFILE in nums:
        return "TooManyOpenFiles"
    if isinstance(exc, httpx.ConnectError):
        if errno.ECONNREFUSED in nums:
            return "ConnectRefused"
        if errno.EADDRNOTAVAIL in nums:
            return "AddrNotAvailable"
        if any(isinstance(e, socket.gaierror) for e in chain):
            return "Dns"
        if any(isinstance(e, ssl.SSLError) for e in chain):
            return "Tls"
        return "ConnectError"
    if errno.ECONNRESET in nums or errno.EPIPE in nums:
        return "ConnectionReset"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return "ClosedBeforeResponse"
    return "Other"


class Timeline:
    """httpcore's `trace` events of one request, as times since t0."""

    __slots__ = ("start", "first", "tcp0", "tcp1", "tls0", "tls1", "send0", "head1", "body0", "body1")

    def __init__(self, start):
        self.start = start
        self.first = None
        self.tcp0 = self.tcp1 = self.tls0 = self.tls1 = None
        self.send0 = self.head1 = self.body0 = self.body1 = None

    async def __call__(self, name, info):
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        _, _, rest = name.partition(".")
        step, _, edge = rest.rpartition(".")
        if step == "connect_tcp":
            if edge == "started":
                self.tcp0 = now
            elif edge == "complete":
                self.tcp1 = now
        elif step == "start_tls":
            if edge == "started":
                self.tls0 = now
            elif edge == "complete":
                self.tls1 = now
        elif step == "send_request_headers" and edge == "started":
            self.send0 = now
        elif step == "receive_response_headers" and edge == "complete":
            self.head1 = now
        elif step == "receive_response_body":
            if edge == "started":
                self.body0 = now
            elif edge in ("complete", "failed"):
                self.body1 = now


def us(seconds):
    return int(seconds * 1_000_000)


def span(a, b):
    return us(b - a) if a is not None and b is not None else None


class Driver:
    def __init__(self, httpx, cfg):
        self.httpx = httpx
        self.cfg = cfg
        self.stages = cfg["stages"]
        self.total = sum(s["duration"] for s in self.stages)
        self.remaining = cfg["max_requests"]
        self.think = cfg["think_time"]
        self.body = base64.b64decode(cfg["body"])
        self.headers = [(k, v) for k, v in cfg["headers"]]
        self.stop = asyncio.Event()
        self.interrupted = False
        self.in_flight = 0
        self.t0 = None
        # local port -> [opened at, last released at] (since t0)
        self.ports = {}
        self.client = None

    def client_kwargs(self):
        httpx, c = self.httpx, self.cfg
        t = c["timeout"]
        verify = True
        if c["insecure"]:
            verify = False
        elif c["ca_file"]:
            verify = ssl.create_default_context(cafile=c["ca_file"])
        version = c["http_version"]
        kwargs = dict(
            limits=httpx.Limits(
                max_connections=c["max_connections"],
                max_keepalive_connections=c["max_keepalive_connections"],
                keepalive_expiry=c["keepalive_expiry"],
            ),
            timeout=httpx.Timeout(connect=t["connect"], read=t["read"], write=t["write"], pool=t["pool"]),
            http1=version != "http2",
            http2=version in ("http2", "auto"),
            verify=verify,
        )
        if c["proxy"]:
            kwargs["proxy"] = c["proxy"]
        return kwargs

    def new_client(self):
        return self.httpx.AsyncClient(**self.client_kwargs())

    def now(self):
        return time.perf_counter() - self.t0

    def claim(self):
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    async def one(self):
        httpx = self.httpx
        start = time.perf_counter()
        tl = Timeline(start)
        status = None
        nbytes = 0
        kind = None
        message = None
        port = None
        client = self.client
        try:
            if client is None:
                client = self.new_client()
            try:
                async with client.stream(
                    self.cfg["method"],
                    self.cfg["url"],
                    headers=self.headers,
                    content=self.body or None,
                    extensions={"trace": tl},
                ) as r:
                    status = r.status_code
                    ns = r.extensions.get("network_stream")
                    if ns is not None:
                        addr = ns.get_extra_info("client_addr")
                        if addr:
                            port = addr[1]
                    async for chunk in r.aiter_raw():
                        nbytes += len(chunk)
            finally:
                if client is not self.client:
                    await client.aclose()
            if status >= 500:
                kind, message = "Status5xx", f"status {status}"
            elif status >= 400:
                kind, message = "Status4xx", f"status {status}"
        except asyncio.CancelledError:
            raise
        except Exception as e:  # every failure is data
            kind = classify(httpx, e)
            if kind != "Other":
                message = f"{type(e).__name__}: {e}"[:300]
            else:
                message = f"{type(e).__module__}.{type(e).__name__}: {e}"[:300]
        end = time.perf_counter()
        t0 = self.t0
        new = tl.tcp1 is not None
        conn = 1 if new else (2 if tl.send0 is not None else 0)
        pool_wait = us((tl.first if tl.first is not None else end) - start)
        age = idle = 0
        if port is not None:
            begin = (tl.send0 or start) - t0
            if new or port not in self.ports:
                self.ports[port] = [(tl.tcp0 or start) - t0, end - t0]
            else:
                opened, last = self.ports[port]
                age, idle = us(max(begin - opened, 0)), us(max(begin - last, 0))
                self.ports[port][1] = end - t0
        body_end = tl.body1 if tl.body1 is not None else (end if tl.body0 is not None else None)
        emit(
            [
                us(end - t0),
                us(end - start),
                pool_wait,
                conn,
                span(tl.tcp0, tl.tcp1),
                span(tl.tls0, tl.tls1),
                age,
                idle,
                span(tl.send0, tl.head1),
                span(tl.head1, body_end) if kind is None else None,
                status,
                nbytes,
                kind,
                message,
            ]
        )

    async def worker(self, index):
        while not self.stop.is_set():
            t = self.now()
            if t >= self.total:
                return
            if index >= round(level_at(self.stages, t)):
                await asyncio.sleep(0.01)
                continue
            if not self.claim():
                self.stop.set()
                return
            self.in_flight += 1
            try:
                await self.one()
            finally:
                self.in_flight -= 1
            if self.think > 0:
                await asyncio.sleep(self.think)

    async def flusher(self):
        while True:
            await asyncio.sleep(0.05)
            sys.stdout.flush()

    async def run(self):
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.interrupt)
        if self.cfg["reuse_client"]:
            self.client = self.new_client()
        self.t0 = time.perf_counter()
        n = max((int(s["level"]) for s in self.stages), default=0)
        tasks = [asyncio.ensure_future(self.worker(i)) for i in range(n)]
        flusher = asyncio.ensure_future(self.flusher())
        all_done = asyncio.ensure_future(asyncio.wait(tasks))
        stop = asyncio.ensure_future(self.stop.wait())
        # the plan's end, max_requests (every worker returns) or an interrupt
        await asyncio.wait([all_done, stop], timeout=max(self.total - self.now(), 0), return_when=asyncio.FIRST_COMPLETED)
        self.stop.set()
        grace = 0 if self.interrupted else self.cfg["graceful_stop"]
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace)
        aborted = self.in_flight
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending)
        all_done.cancel()
        stop.cancel()
        if self.client is not None:
            try:
                await self.client.aclose()
            except Exception as e:
                log(f"closing the client: {e}")
        emit({"end": {"aborted": aborted, "interrupted": self.interrupted}})
        flusher.cancel()
        sys.stdout.flush()

    def interrupt(self):
        self.interrupted = True
        self.stop.set()


def main():
    line = sys.stdin.readline()
    if not line:
        return 2
    cfg = json.loads(line)
    try:
        import httpx
    except ImportError as e:
        emit({"error": f"cannot import httpx ({e}): install it with `python3 -m pip install httpx`"})
        return 2
    if cfg["http_version"] in ("http2", "auto"):
        try:
            import h2  # noqa: F401
        except ImportError:
            emit({"error": "http2 with httpx needs the h2 package: `python3 -m pip install 'httpx[http2]'`"})
            return 2
    try:
        driver = Driver(httpx, cfg)
        driver.client_kwargs()
    except Exception as e:
        emit({"error": f"cannot build the httpx client: {type(e).__name__}: {e}"})
        return 2
    emit({"ready": {"httpx": httpx.__version__}})
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        return 0
    loop = asyncio.new_event_loop()

    def watch_stdin():
        sys.stdin.read()  # returns when the pipe closes: connscope stopped us
        loop.call_soon_threadsafe(driver.interrupt)

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        loop.run_until_complete(driver.run())
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
