"""What a DynamoDB client does when the table throttles it.

Two policies, each hooked into one client's botocore events (so every store
module's requests follow it without a change to the stores):

- **Imports pace their writes** (:class:`WritePacer`, docs/DECISIONS.md:
  "Imports are paced"): a token bucket (kept as the time the next write is
  due) hands out writes at a rate that never passes the chunk's share of the
  stack's import ceiling, drops to 70% when
  DynamoDB throttles a write and climbs back linearly while writes are
  accepted. A throttled request, read or write, is tried again for as long
  as it takes: a chunk never fails because of throttling, it slows down.
- **API functions answer within their time budget**
  (:class:`RetryWithinDeadline`): a throttled request is tried again with
  jittered exponential back-off, and any other error as botocore's standard
  mode decides, but no attempt is started that could not end (its connect
  and read timeouts) before the invocation's answer is due: then the request
  fails with :class:`TimeBudgetSpent` and the route answers 503 in time
  (docs/DECISIONS.md: "API functions answer before API Gateway's 29 s").
  Their writes are never paced: tracking does not wait on an import.

Both decide about throttling; every other error is left to botocore's
standard retry mode (store.dynamo.client_config), whose handler the policy
calls for it, and which never sees the throttles the policy answers (they
would spend its retry quota: ``_take_over_throttling``). A client has one
policy: the last attached replaces every hook of the one before. Which
answer is throttling is botocore's own judgement (its
``ThrottlingErrorDetector``: the throttling error codes and HTTP 429).
"""

from __future__ import annotations

import functools
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError
from botocore.retries.standard import (
    RetryEventAdapter,
    ThrottlingErrorDetector,
    register_retry_handler,
)

# DynamoDB's requests that consume write capacity
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
# the unique id of the one throttling policy a client has (the last attached replaces any other)
_POLICY_ID = "propsync-throttling"


def _hooks(service: str) -> tuple[tuple[str, str], ...]:
    """Every hook a policy registers on a client of ``service`` (botocore's
    event name of it: "dynamodb", "s3"), by event and unique id."""
    return (
        (f"needs-retry.{service}", _POLICY_ID),
        (f"before-call.{service}", f"{_POLICY_ID}-budget"),
        *((f"request-created.{service}.{op}", f"{_POLICY_ID}-{op}") for op in WRITE_OPERATIONS),
        (f"after-call.{service}", f"{_POLICY_ID}-done"),
        (f"after-call-error.{service}", f"{_POLICY_ID}-error"),
    )


def _service(client: Any) -> str:
    """The client's service as botocore names it in events."""
    return str(client.meta.service_model.service_id.hyphenize())


def attempt_seconds(config: Any) -> float:
    """The longest one attempt of a request can take with a client's
    botocore ``config``: the connect timeout, then the read timeout (botocore
    gives up an answer that sends nothing for that long; propsync's answers
    are small enough to come in one read)."""
    return float(config.connect_timeout) + float(config.read_timeout)


class TimeBudgetSpent(BotoCoreError):
    """A request not started: it could not end before the invocation's
    answer is due. Transient (store.dynamo.is_transient_error): the route
    answers 503, "retry"."""

    fmt = "{operation} not sent: it could not end within the invocation's time budget"


# in a call's request context: the throttles of the call a policy retried
_RETRIED_THROTTLES = "propsync_retried_throttles"
_throttling = ThrottlingErrorDetector(RetryEventAdapter())
H = TypeVar("H", bound=Callable[[Any, Any], Any])


def is_throttling(**needs_retry: Any) -> bool:
    """Whether the answer a botocore ``needs-retry`` event carries is throttling."""
    return bool(_throttling.is_throttling_error(**needs_retry))


@dataclass(frozen=True)
class PacingFigures:
    """What a pacer has seen so far (subtract two to get a span's)."""

    writes: int  # write requests sent, retries included
    throttled: int  # requests DynamoDB throttled
    throttled_seconds: float  # wall time while a request waited to be retried after throttling


class WritePacer:
    """Paces the writes of one import chunk (all the threads of one client).

    Additive increase, multiplicative decrease: the rate starts at
    ``ceiling`` writes per second (the chunk's share: the ceiling is the
    operator's, sized to leave the rest of the table to tracking), is
    multiplied by DECREASE when a write is throttled, once per congestion
    (a throttle of a write given its turn before the last decrease, spaced
    at the old rate, is the same congestion, already answered), and grows
    by ``ceiling / RECOVERY_SECONDS`` per second while no request waits on a
    throttle.

    The writes are spaced as a token bucket of BURST_SECONDS at the current
    rate would space them, kept as the time the next write is due (the
    generic cell rate algorithm, GCRA): each write takes its turn and moves
    that time on by one interval at the rate of the moment, and a thread
    whose turn is ahead sleeps until it comes. A write that waits keeps its
    turn when the rate changes (a bucket counting tokens would re-price the
    writes already waiting at the new rate, and let later writes overtake
    them), so the writes sent in any span never pass ``ceiling`` x span + the
    burst."""

    DECREASE = 0.7  # as CUBIC's beta (botocore's adaptive mode uses it too)
    RECOVERY_SECONDS = 10.0  # from nothing back to the ceiling
    BURST_SECONDS = 0.05
    MIN_RATE = 1.0  # writes/s: never stop altogether (or the ceiling, if lower)
    MAX_RETRY_DELAY = 1.0

    def __init__(
        self,
        ceiling: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ):
        if not ceiling > 0:
            raise ValueError(f"a write pacer needs a ceiling above 0 writes/s, not {ceiling}")
        self.ceiling = float(ceiling)
        self._clock, self._sleep, self._rng = clock, sleep, rng
        self._lock = threading.Lock()
        self._rate = self.ceiling
        # a chunk's share may be below MIN_RATE (a small ceiling over many chunks)
        self._floor = min(self.MIN_RATE, self.ceiling)
        now = clock()
        self._next_due = now  # the theoretical time of the next write (GCRA's TAT)
        self._updated_at = now
        self._congested_until = -math.inf  # turns before it: the last decrease's
        self._writes = 0
        self._throttled = 0
        self._waiting = 0  # requests between a throttle and their call's end
        self._throttled_since = 0.0
        self._throttled_seconds = 0.0
        self._thread = threading.local()  # per thread: the last write's due time, throttled?

    @property
    def rate(self) -> float:
        """The writes per second the bucket hands out now."""
        with self._lock:
            self._advance(self._clock())
            return self._rate

    def figures(self) -> PacingFigures:
        with self._lock:
            now = self._clock()
            ongoing = now - self._throttled_since if self._waiting else 0.0
            return PacingFigures(self._writes, self._throttled, self._throttled_seconds + ongoing)

    def acquire(self) -> None:
        """Wait for this write's turn."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            # a turn at most the burst's tolerance ahead of now is taken now
            due = max(now, self._next_due - self._tolerance())
            self._next_due = max(self._next_due, now) + 1.0 / self._rate
            wait = due - now
            self._writes += 1
            self._thread.due = due
        if wait > 0:
            self._sleep(wait)

    def throttled(self, attempts: int, *, write: bool) -> float:
        """A request was throttled: slow down (for a write) and say how long
        to wait before trying it again (the token bucket spaces the retry
        of a write further)."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            self._throttled += 1
            if not getattr(self._thread, "waiting", False):
                self._thread.waiting = True
                if self._waiting == 0:
                    self._throttled_since = now
                self._waiting += 1
            if write and getattr(self._thread, "due", now) >= self._congested_until:
                self._rate = max(self._floor, self._rate * self.DECREASE)
                # no burst after a decrease: the next write waits an interval
                self._next_due = max(self._next_due, now + self._tolerance() + 1.0 / self._rate)
                # the writes already given a turn were spaced at the old rate:
                # their throttles are this congestion's, not news of more
                self._congested_until = self._next_due - self._tolerance()
            cap = min(self.MAX_RETRY_DELAY, 0.01 * 2.0 ** min(attempts, 10))
        return self._rng() * cap

    def call_done(self) -> None:
        """A call ended (answered, or given up by botocore): its thread no
        longer waits on a throttle."""
        if not getattr(self._thread, "waiting", False):
            return
        with self._lock:
            now = self._clock()
            self._advance(now)  # the time until now was throttled: no recovery in it
            self._thread.waiting = False
            self._waiting -= 1
            if self._waiting == 0:
                self._throttled_seconds += now - self._throttled_since

    def _advance(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated_at)
        self._updated_at = now
        if not self._waiting:  # additive increase while nothing is throttled
            self._rate = min(
                self.ceiling, self._rate + elapsed * self.ceiling / self.RECOVERY_SECONDS
            )

    def _tolerance(self) -> float:
        """How far ahead of now a write's turn may be and the write still go
        now: a burst of BURST_SECONDS at the current rate, less the write
        itself (none below one write per interval)."""
        return max(0.0, self.BURST_SECONDS - 1.0 / self._rate)

    # ----------------------------------------------------- botocore events

    def attach(self, client: Any) -> WritePacer:
        """Pace ``client``'s writes and retry its throttled requests (in place
        of any other throttling policy it had)."""
        events = _take_over_throttling(client, self._retry_throttled)
        for operation in WRITE_OPERATIONS:
            # request-created: once per attempt, before the request is signed
            events.register(
                f"request-created.dynamodb.{operation}",
                self._before_write,
                unique_id=f"{_POLICY_ID}-{operation}",
            )
        events.register("after-call.dynamodb", self._after_call, unique_id=f"{_POLICY_ID}-done")
        events.register(
            "after-call-error.dynamodb", self._after_call, unique_id=f"{_POLICY_ID}-error"
        )
        return self

    def _before_write(self, **_kwargs: Any) -> None:
        self.acquire()

    def _retry_throttled(self, **kwargs: Any) -> float:
        write = kwargs["operation"].name in WRITE_OPERATIONS
        attempts: int = kwargs["attempts"]
        return self.throttled(attempts, write=write)

    def _after_call(self, **_kwargs: Any) -> None:
        self.call_done()


class RetryWithinDeadline:
    """Keeps an API function's requests within its invocation's time budget
    (the deadline, on the monotonic clock, when the answer is due: set per
    invocation by ``within_time_budget``). A throttled request is retried
    with jittered back-off, any other error as botocore's standard mode
    decides; but an attempt, the first of a request or a retry, starts only
    if it can end by the deadline, however long it hangs (``attempt_seconds``
    of the client's config): else the retry is not made, or the request is
    not sent (TimeBudgetSpent). So every request of an invocation has ended
    by the deadline. Without a deadline, botocore's standard mode decides
    alone, as for any client."""

    BASE_DELAY = 0.025
    MAX_DELAY = 1.0

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ):
        self._clock, self._rng = clock, rng
        self._attempt_seconds = 0.0

    def attach(self, client: Any) -> RetryWithinDeadline:
        """Keep ``client``'s requests within the deadline (in place of any
        other throttling policy it had: its writes are not paced)."""
        self._attempt_seconds = attempt_seconds(client.meta.config)
        events = _take_over_throttling(client, self._retry_throttled, self._within_deadline)
        events.register(
            f"before-call.{_service(client)}",
            self._before_call,
            unique_id=f"{_POLICY_ID}-budget",
        )
        return self

    def _last_start(self) -> float | None:
        """The last moment an attempt may start and still end by the deadline."""
        deadline = _deadline.at
        return None if deadline is None else deadline - self._attempt_seconds

    def _before_call(self, model: Any, **_kwargs: Any) -> None:
        last_start = self._last_start()
        if last_start is not None and self._clock() > last_start:
            raise TimeBudgetSpent(operation=model.name)

    def _within_deadline(self, delay: float | bool | None) -> float | bool | None:
        """botocore's answer to another error, unless its retry could not
        end by the deadline (False: no retry)."""
        last_start = self._last_start()
        if last_start is None or delay is None or delay is False:
            return delay
        return delay if self._clock() + float(delay) <= last_start else False

    def _retry_throttled(self, **kwargs: Any) -> float | bool | None:
        if _deadline.at is None:
            return None  # botocore's standard mode decides
        # full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter")
        attempts: int = kwargs["attempts"]
        delay = self._rng() * min(self.MAX_DELAY, self.BASE_DELAY * 2.0**attempts)
        # False: no time left for another try, botocore raises the throttling
        return self._within_deadline(delay)


def _take_over_throttling(
    client: Any,
    retry_throttled: Callable[..., float | bool | None],
    vet_other: Callable[[float | bool | None], float | bool | None] | None = None,
) -> Any:
    """Make ``retry_throttled`` (the ``needs-retry`` arguments in; a delay,
    False for no retry, or None to leave it to botocore) the answer of
    ``client`` to a throttled request, in place of every hook of another
    policy; ``vet_other``, if given, sees botocore's answer to any other
    error and may refuse its retry (False). Returns the client's events.

    botocore's standard retry handler answers every other request, and a
    throttle the policy leaves to it. It must not see the throttles the
    policy answers: it spends its retry quota (500 in all; 5 a throttle, 14
    another error) on each retry it would make, as a circuit breaker, so a
    long spell of throttling retried here would leave it no quota, and the
    next 500 or lost connection would not be retried at all. So the client's
    handler is replaced by one of the same configuration that only this
    policy calls. For the same reason it is told the attempts of a call
    less the throttles the policy retried: a 500 after a dozen throttles is
    retried as often as one on a call that was never throttled."""
    retries = client.meta.config.retries
    if retries.get("mode") != "standard":
        raise ValueError(
            "a throttling policy needs a client in botocore's standard retry mode "
            f"(store.dynamo.client_config), not {retries.get('mode')!r}"
        )
    service = _service(client)
    events = client.meta.events
    for event, unique_id in _hooks(service):
        events.unregister(event, unique_id=unique_id)
    standard_id = f"retry-config-{service}"  # botocore's unique id of its handler
    events.unregister(f"needs-retry.{service}", unique_id=standard_id)
    standard = register_retry_handler(client, max_attempts=retries.get("total_max_attempts"))
    events.unregister(f"needs-retry.{service}", unique_id=standard_id)

    def needs_retry(**kwargs: Any) -> float | bool | None:
        call = kwargs["request_dict"]["context"]  # one per call, kept between its attempts
        if is_throttling(**kwargs):
            answer = retry_throttled(**kwargs)
            if answer is not None:
                call[_RETRIED_THROTTLES] = call.get(_RETRIED_THROTTLES, 0) + 1
                return answer
        # the attempts botocore counts are those of the other errors
        attempts = kwargs["attempts"] - call.get(_RETRIED_THROTTLES, 0)
        answer = standard.needs_retry(**{**kwargs, "attempts": attempts})
        return answer if vet_other is None else vet_other(answer)

    events.register(f"needs-retry.{service}", needs_retry, unique_id=_POLICY_ID)
    return events


class _Deadline:
    """The running invocation's deadline. A Lambda container runs one
    invocation at a time, and a batch's writes run on the container's pool
    threads, so the deadline is the process's, not a thread's."""

    at: float | None = None


_deadline = _Deadline()

# Time kept to answer after the last try: building and sending the response.
ANSWER_SECONDS = 1.0


def set_time_budget(remaining_seconds: float | None) -> None:
    """The requests of API functions end within ``remaining_seconds`` less
    ANSWER_SECONDS from now (None: as botocore's standard mode allows)."""
    _deadline.at = (
        None if remaining_seconds is None else time.monotonic() + remaining_seconds - ANSWER_SECONDS
    )


def within_time_budget(handler: H) -> H:
    """For a function API Gateway invokes (its ``context`` says the time
    left): while it runs, its requests end by then, less ANSWER_SECONDS
    (RetryWithinDeadline)."""

    @functools.wraps(handler)
    def budgeted(event: Any, context: Any) -> Any:
        set_time_budget(context.get_remaining_time_in_millis() / 1000)
        try:
            return handler(event, context)
        finally:
            set_time_budget(None)

    return budgeted  # type: ignore[return-value]
