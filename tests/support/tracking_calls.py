"""The requests one tracking request costs, the route's apart from the
worker's: in the queued mode the route checks and queues, and the worker (run
by ApiClient before the request returns) makes the writes."""

from __future__ import annotations

from typing import Any

from propsync.store.customers import store_from_environment
from tests.conftest import RequestLog


class TrackingCalls:
    """DynamoDB requests of ONE tracking request, split at the route's
    request to the queue (SendMessage or SendMessageBatch): what came before
    it is the route's, what came after it the worker's. In the synchronous
    mode there is no queue, and every request is the route's."""

    def __init__(self, queued: bool) -> None:
        self.route = RequestLog()
        self.worker = RequestLog()
        self.queue_requests: list[str] = []  # the route's SQS requests, by operation
        store_from_environment()._client.meta.events.register(
            "provide-client-params.dynamodb", self._dynamodb
        )
        if queued:
            from propsync.tracking_queue import queue_from_environment  # noqa: PLC0415

            queue_from_environment().client.meta.events.register(
                "provide-client-params.sqs", self._sqs
            )

    def _dynamodb(self, model: Any, params: Any, **kwargs: Any) -> None:
        (self.worker if self.queue_requests else self.route).record(model, params, **kwargs)

    def _sqs(self, model: Any, params: Any, **_kwargs: Any) -> None:
        self.queue_requests.append(model.name)
