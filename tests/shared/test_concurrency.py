"""`prefetch`: an early stop leaves no producer thread behind and runs the source's cleanup."""

import threading
import time

import pytest

from shared.concurrency import prefetch


def _producers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "prefetch" and t.is_alive()]


def _wait_until_gone(seconds: float = 1.0) -> list[threading.Thread]:
    deadline = time.monotonic() + seconds
    while _producers() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _producers()


@pytest.mark.parametrize("depth", [1, 4])
def test_breaking_out_early_stops_the_producer_and_closes_the_source(depth):
    released = threading.Event()

    def source():  # like a video reader: endless, with cleanup in `finally`
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            released.set()

    frames = source()  # held here, as `FrameSource` holds its reader: garbage collection would not close it
    got = []
    for item in prefetch(frames, depth=depth):
        got.append(item)
        if item == 2:
            time.sleep(0.05)  # let the producer fill the queue and block on it
            break
    assert got == [0, 1, 2]
    assert not _wait_until_gone(1.0)  # the producer has exited
    assert released.is_set()  # the source's finally ran (a video capture would be released here)


def test_closing_the_consumer_generator_stops_the_producer_and_closes_the_source():
    released = threading.Event()

    def source():
        try:
            yield from range(1_000_000)
        finally:
            released.set()

    frames = source()
    it = prefetch(frames, depth=2)
    assert next(it) == 0
    it.close()
    assert not _wait_until_gone(1.0) and released.is_set()


def test_a_consumer_error_stops_the_producer_and_closes_the_source():
    released = threading.Event()

    def source():
        try:
            yield from range(1_000_000)
        finally:
            released.set()

    frames = source()
    with pytest.raises(RuntimeError, match="consumer failed"):
        for item in prefetch(frames):
            if item == 1:
                raise RuntimeError("consumer failed")
    assert not _wait_until_gone(1.0) and released.is_set()


def test_behind_runs_calls_in_order_and_raises_their_error_at_wait():
    from shared.concurrency import Behind

    done = []

    def slow(i):
        time.sleep(0.01 * (3 - i % 3))  # later calls are quicker: only the one thread keeps them in order
        done.append(i)

    with Behind(depth=2) as behind:
        for i in range(9):
            behind.submit(slow, i)
    assert done == list(range(9))

    def boom():
        raise ValueError("drift update failed")

    behind = Behind()
    behind.submit(boom)
    with pytest.raises(ValueError, match="drift update failed"):
        behind.wait()


def test_behind_stops_after_an_error_in_the_block():
    from shared.concurrency import Behind

    started = []
    with pytest.raises(KeyError), Behind(depth=4) as behind:
        for i in range(4):
            behind.submit(lambda i=i: (started.append(i), time.sleep(0.05)))
        raise KeyError("the loop failed")
    assert started == [0]  # the running call finished, the queued ones were cancelled
    assert not [t for t in threading.enumerate() if t.name.startswith("behind") and t.is_alive()]
