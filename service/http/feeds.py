"""``JobFeeds``: followers of a job share one poll of the store, and their number is bounded.

Without it each ``GET /train/{id}/events`` stream polled the store on its own (three calls
every 0.25 s): 300 followers pushed ``GET /train`` from 7 ms to 994 ms p50, their calls
queued on the same threads. Here the first follower of a job starts one ``Feed`` (the
``poll`` below), which keeps the job and its curve so far and the ``progress`` events
since; each follower gets a ``state`` of the feed at its arrival, then the progress events
after it, then ``final``. The last follower to leave stops the feed.

``follow`` refuses a follower past ``per_job`` streams of one job or ``total`` in all with
``Overloaded`` (429, ``Retry-After``), before the stream starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from service.errors import Overloaded
from service.jobs.records import Curve, JobRecord
from service.jobs.runner import Jobs

RETRY_AFTER_S = 5
#: Seconds between two reads of a followed job.
POLL_INTERVAL_S = 0.25


@dataclass(frozen=True)
class JobEvent:
    """One step of a job as it is followed: ``state`` first (``curve`` so far), ``progress``
    as the fit advances (``curve``: the new points, the first of them at iteration
    ``first_iteration``), ``final`` (the whole curve). The routes render it."""

    kind: Literal["state", "progress", "final"]
    job: JobRecord
    curve: Curve
    first_iteration: int = 1


async def poll(jobs: Jobs, job_id: str) -> AsyncIterator[JobEvent]:
    """The state so far, then a ``progress`` event per read that saw new points, then
    ``final`` once the job has ended (and its version is served here)."""
    job = await jobs.get(job_id)
    curve = await jobs.curve(job_id)
    yield JobEvent("state", job, curve)
    seen = (job.iteration, job.status, curve.last_seq)
    while not job.status.finished:
        await asyncio.sleep(POLL_INTERVAL_S)
        job = await jobs.get(job_id)
        new = await jobs.curve(job_id, after_seq=curve.last_seq)
        if (job.iteration, job.status, new.last_seq) != seen:
            first = len(curve.losses) + 1
            curve.extend(new.losses, new.accuracy, new.last_seq)
            seen = (job.iteration, job.status, curve.last_seq)
            if not job.status.finished:
                yield JobEvent("progress", job, new, first)
    await jobs.serve(job)
    yield JobEvent("final", await jobs.get(job_id), curve)


@dataclass
class Feed:
    """One job's poll, shared by its followers."""

    followers: int = 0
    state: JobEvent | None = None
    progress: list[JobEvent] = field(default_factory=list)
    final: JobEvent | None = None
    #: Why the poll stopped before ``final`` (the job vanished, the store failed).
    error: Exception | None = None
    ended: bool = False
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task[None] | None = None

    async def run(self, events: AsyncIterator[JobEvent]) -> None:
        """Take the poll's events in; wake the followers after each, and at the end."""
        try:
            async for event in events:
                if event.kind == "state":
                    self.state = event
                elif event.kind == "progress" and self.state is not None:
                    self.progress.append(event)
                    self.state = replace(self.state, job=event.job)  # its curve is extended
                else:
                    self.final = event
                await self._wake()
        except Exception as exc:  # handed to every follower, which raises it
            self.error = exc
        finally:
            self.ended = True
            await self._wake()

    def beyond(self, seen: int) -> bool:
        """Whether there is news for a follower that has seen ``seen`` progress events."""
        return len(self.progress) > seen or self.final is not None

    async def _wake(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait(self, ready: Callable[[], bool]) -> None:
        """Until ``ready()`` or the poll has ended; its error, if it failed."""
        async with self.changed:
            await self.changed.wait_for(lambda: ready() or self.ended)
        if self.error is not None:
            raise self.error


def _snapshot(state: JobEvent) -> JobEvent:
    """The feed's state as a follower arriving now sees it (a copy of the curve so far)."""
    curve = state.curve
    copy = Curve(list(curve.losses), list(curve.accuracy), curve.last_seq)
    return JobEvent("state", state.job, copy)


class JobFeeds:
    """The feeds of the jobs being followed, and the bounds on their followers."""

    def __init__(
        self, poll: Callable[[str], AsyncIterator[JobEvent]], *, per_job: int, total: int
    ) -> None:
        self.poll = poll
        self.per_job = per_job
        self.total = total
        self.followers = 0
        self._feeds: dict[str, Feed] = {}

    def follow(self, job_id: str) -> AsyncIterator[JobEvent]:
        """Reserve a place among the job's followers (``Overloaded`` when none is left) and
        return its events; the place is given back when the iterator ends or is closed."""
        feed = self._feeds.get(job_id)
        if self.followers >= self.total or (feed is not None and feed.followers >= self.per_job):
            whose = "in all" if self.followers >= self.total else "of this job"
            raise Overloaded(
                f"too many followers {whose} ({self.followers} streams open)",
                expected=f"retry after {RETRY_AFTER_S} s, or poll GET /train/{{id}}",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        if feed is None:
            feed = self._feeds[job_id] = Feed()
            feed.task = asyncio.create_task(feed.run(self.poll(job_id)))
        feed.followers += 1
        self.followers += 1
        return self._events(job_id, feed)

    async def _events(self, job_id: str, feed: Feed) -> AsyncIterator[JobEvent]:
        try:
            await feed.wait(lambda: feed.state is not None)
            if feed.state is None:  # ended without a word: nothing to follow
                return
            seen = len(feed.progress)
            yield _snapshot(feed.state)
            while True:
                await feed.wait(functools.partial(feed.beyond, seen))
                if feed.final is None and len(feed.progress) == seen:
                    return  # the poll ended without a final event
                for event in feed.progress[seen:]:
                    yield event
                seen = len(feed.progress)
                if feed.final is not None:
                    yield feed.final
                    return
        finally:
            await self._leave(job_id, feed)

    async def _leave(self, job_id: str, feed: Feed) -> None:
        feed.followers -= 1
        self.followers -= 1
        if feed.followers == 0 and self._feeds.get(job_id) is feed:
            del self._feeds[job_id]
            await _stop(feed)

    async def aclose(self) -> None:
        """Stop every feed (at shutdown)."""
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await _stop(feed)


async def _stop(feed: Feed) -> None:
    if feed.task is not None and not feed.task.done():
        feed.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed.task
