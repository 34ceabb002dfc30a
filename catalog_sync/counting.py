"""Counts asked of Secoda ahead of their use, a few at a time on threads.

The deletion check (catalog_sync.reconcile) counts many independent pieces one after another: at a million
resources, some 250 packs of one entity type's parents. Each count is one small request, so at 200 ms a request
the wait, not the work, is what costs. `CountAhead` sends up to `concurrency` of them at once, each thread with
a client of its own (`SecodaClient.clone`: its own session, the same token, retries, request budget and write
throttle), and hands the answers back in the order the check asks for them, errors included.
"""
import queue
from concurrent.futures import ThreadPoolExecutor

from django.db import connection


class CountAhead:
    def __init__(self, client, concurrency):
        self.client = client
        self.concurrency = max(1, int(concurrency))
        self.window = 2 * self.concurrency  # counts asked ahead of the one in use: the threads never wait for it
        self._pool = None
        self._idle = queue.SimpleQueue()  # clients not counting right now
        self._clients = []

    @property
    def enabled(self):
        return self.concurrency > 1

    def ask(self, filter_obj):
        """Start counting `filter_obj`; returns a Future of `client.count(filter_obj)` (its errors included)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="count")
            # One client a thread, made here in the caller's thread (each copies the path spellings learned so far).
            for _ in range(self.concurrency):
                clone = self.client.clone()
                clone.before_request = self.client.before_request
                self._clients.append(clone)
                self._idle.put(clone)
        return self._pool.submit(self._count, filter_obj)

    def _count(self, filter_obj):
        client = self._idle.get()
        try:
            return client.count(filter_obj)
        finally:
            self._idle.put(client)
            connection.close()  # a `before_request` hook may have opened this thread's connection

    def close(self):
        """Wait for the counts in flight (those not started are dropped) and add their requests to the client's."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for clone in self._clients:
            self.client.requests_made += clone.requests_made
            self.client.retries += clone.retries
            clone.session.close()
        self._clients = []
