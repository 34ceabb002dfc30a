"""Rate limits shared by every worker: a request budget and Secoda's write limit.

With REDIS_URL set, both live in Redis, so ten workers together stay under the
ceiling one worker would; without it (the first-run default, one worker) they
live in the process. If Redis stops answering mid-sync, the limits fall back to
the process rather than failing the sync.
"""
import logging
import threading
import time
from collections import deque

logger = logging.getLogger(__name__)

KEY_PREFIX = "catalog-hygiene:secoda"
# How long a write counts against Secoda's writes a minute: a minute and a second. A write is counted here before
# it leaves and by Secoda when it arrives; with no margin, a first write slower on the way than the 31st makes
# Secoda see 31 in its minute and answer 429 (2 of 200 writes did in bench/migration.py).
WINDOW_SECONDS = 61.0

# Token bucket: refill `rate` tokens a second up to `burst`; take one or say how long to wait.
# Redis's own clock is used, so hosts with skewed clocks still share one bucket.
_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""

# Sliding window of writes (WINDOW_SECONDS); a 429 blocks the window until `blocked_until`.
_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return tostring(blocked - now) end
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('EXPIRE', KEYS[1], 120)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(math.max(0.01, tonumber(oldest[2]) + window - now))
"""


class WriteThrottle:
    """At most `per_minute` writes in any sliding minute (WINDOW_SECONDS, in this process)."""

    def __init__(self, per_minute, clock=time.monotonic, sleep=time.sleep):
        self.per_minute = per_minute
        self.clock = clock
        self.sleep = sleep
        self._times = deque()
        self._lock = threading.Lock()

    def wait(self):
        with self._lock:
            while True:
                now = self.clock()
                while self._times and now - self._times[0] >= WINDOW_SECONDS:
                    self._times.popleft()
                if len(self._times) < self.per_minute:
                    self._times.append(now)
                    return
                self.sleep(WINDOW_SECONDS - (now - self._times[0]) + 0.01)

    def push_back(self, seconds):
        """Secoda said 429: treat the window as full for `seconds`."""
        with self._lock:
            now = self.clock()
            self._times.clear()
            filler = now + seconds - WINDOW_SECONDS
            self._times.extend([filler] * self.per_minute)


class LocalBudget:
    """A token bucket in this process: at most `rate` requests a second on average."""

    def __init__(self, rate, burst=None, clock=time.monotonic, sleep=time.sleep):
        self.rate = float(rate)
        self.burst = float(burst or max(1.0, rate))
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.burst
        self._ts = clock()
        self._lock = threading.Lock()

    def reserve(self):
        """Take a token; returns seconds to wait before using it (0 when one was free)."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._ts) * self.rate)
            self._ts = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self):
        wait = self.reserve()
        if wait > 0:
            self.sleep(wait)


class RedisBudget:
    """The same token bucket in Redis, shared by every worker on every host."""

    def __init__(self, redis, rate, burst=None, key=f"{KEY_PREFIX}:request-budget", sleep=time.sleep):
        self.redis = redis
        self.rate = float(rate)
        self.burst = float(burst or max(1.0, rate))
        self.key = key
        self.sleep = sleep
        self._script = redis.register_script(_BUCKET)
        self._fallback = None

    def acquire(self):
        while True:
            try:
                wait = float(self._script(keys=[self.key], args=[self.rate, self.burst]))
            except Exception as exc:  # Redis down: keep syncing, limited per process
                if self._fallback is None:
                    logger.warning("The shared request budget is unavailable (%s); limiting this process only.",
                                   type(exc).__name__)
                    self._fallback = LocalBudget(self.rate, self.burst, sleep=self.sleep)
                self._fallback.acquire()
                return
            if wait <= 0:
                return
            self.sleep(min(wait, 1.0))


class RedisWriteThrottle:
    """Secoda's 30 writes a minute, counted across every worker (same interface as WriteThrottle)."""

    def __init__(self, redis, per_minute, key=f"{KEY_PREFIX}:writes", sleep=time.sleep):
        self.redis = redis
        self.per_minute = per_minute
        self.key = key
        self.blocked_key = f"{key}:blocked-until"
        self.sleep = sleep
        self._script = redis.register_script(_WINDOW)
        self._fallback = None
        self._sequence = 0
        self._lock = threading.Lock()

    def _member(self):
        with self._lock:
            self._sequence += 1
            return f"{id(self)}:{threading.get_ident()}:{self._sequence}:{time.time()}"

    def wait(self):
        while True:
            try:
                wait = float(self._script(keys=[self.key, self.blocked_key],
                                          args=[self.per_minute, self._member(), WINDOW_SECONDS]))
            except Exception as exc:
                if self._fallback is None:
                    logger.warning("The shared write limit is unavailable (%s); limiting this process only.",
                                   type(exc).__name__)
                    self._fallback = WriteThrottle(self.per_minute, sleep=self.sleep)
                self._fallback.wait()
                return
            if wait <= 0:
                return
            self.sleep(wait + 0.01)

    def push_back(self, seconds):
        """Secoda said 429: no worker writes for `seconds`."""
        try:
            until = float(self.redis.time()[0]) + float(seconds)
            self.redis.set(self.blocked_key, str(until), ex=max(1, int(seconds) + 1))
        except Exception:
            if self._fallback is not None:
                self._fallback.push_back(seconds)


_shared = {}
_shared_lock = threading.Lock()


def _redis():
    from django.conf import settings

    if not settings.REDIS_URL:
        return None
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def shared_budget():
    """The request budget every client of this deployment draws from (None: no ceiling)."""
    from django.conf import settings

    rate = settings.SECODA_MAX_REQUESTS_PER_SECOND
    if not rate:
        return None
    key = ("budget", rate, settings.REDIS_URL)
    with _shared_lock:
        if key not in _shared:
            client = _redis()
            _shared[key] = RedisBudget(client, rate) if client else LocalBudget(rate)
        return _shared[key]


def shared_write_throttle():
    from django.conf import settings

    per_minute = settings.SECODA_WRITES_PER_MINUTE
    key = ("writes", per_minute, settings.REDIS_URL)
    with _shared_lock:
        if key not in _shared:
            client = _redis()
            _shared[key] = RedisWriteThrottle(client, per_minute) if client else WriteThrottle(per_minute)
        return _shared[key]
