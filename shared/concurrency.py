"""Overlap producing items with consuming them: `prefetch` runs an iterator on a background thread, and
`Behind` runs a loop's trailing work (writing a result, updating counts) on one.

    for chunk in prefetch(iter_chunks("tx.parquet"), depth=2):
        score(chunk)  # the next chunk is read while this one is scored

    with Behind() as behind:
        for chunk in chunks:
            behind.submit(writer.write, score(chunk))  # written while the next chunk is scored

The one prefetch of the project (tables in `shared.tabular`, video frames in `detection.video`).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

_POLL_SECONDS = 0.1  # how often a blocked producer or a stopping consumer checks whether the other has gone


def prefetch(items: Iterator, depth: int = 1) -> Iterator:
    """Yield from `items`, producing up to `depth` items ahead on a background thread (named "prefetch").

    The producer overlaps the consumer's work when both release the GIL (pyarrow, numpy, OpenCV decoding,
    ONNX Runtime). Exceptions reach the consumer at the item where they happened. A consumer that stops
    early (`break`, `close()`, an exception) tells the producer to stop; the producer closes `items` (when
    it has `close()`, as generators do) and has exited before the consumer's loop is left, so the source's
    `finally` (releasing a video capture, closing a file) runs then, not whenever it is garbage-collected.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def put(entry) -> bool:
        """Queue `entry` unless the consumer has stopped; False when it has."""
        while not stop.is_set():
            try:
                q.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((done, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # this thread is the only one running `items`, so closing it here is safe

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        thread.join()  # a producer inside next(items) sees `stop` at its next put, within _POLL_SECONDS


class Behind:
    """Calls run one at a time, in the order submitted, on one background thread (named "behind").

    `submit` returns at once unless `depth` calls are still pending, then waits for the oldest (which bounds
    the memory their arguments hold). An exception of a call is raised by a later `submit` or by `wait`.
    Leaving the block waits for every call; after an exception in the block, the calls not yet started are
    cancelled and the running one finishes, its error dropped (the block's is the one that matters).
    """

    def __init__(self, depth: int = 1):
        self.depth = max(1, depth)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="behind")
        self._pending: deque[Future] = deque()

    def submit(self, fn: Callable, *args) -> None:
        while len(self._pending) >= self.depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(fn, *args))

    def wait(self) -> None:
        """Return when every submitted call has run; raise the first one's exception."""
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> Behind:
        return self

    def __exit__(self, exc_type, *_) -> None:
        try:
            if exc_type is None:
                self.wait()
            else:
                for f in self._pending:
                    f.cancel()
                self._pending.clear()
        finally:
            self._pool.shutdown(wait=True)
