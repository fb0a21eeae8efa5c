"""The login scenario of the merge tests: jane and an anonymous customer,
each with properties newer and older than the other's, and the command that
names both (tests/integration/test_merge_faults.py, test_merge_concurrency.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from propsync.customer_updates import UpdateResult
from propsync.identity import find_customer_id, new_customer_id
from propsync.merging import read_following_merges
from propsync.store.customers import CustomerStore
from tests.support.builders import versions
from tests.support.faults import CrashAt
from tests.support.merge_checks import Ledger, merge_problems, new_project

JANE = {"registered": "jane"}
COOKIE = {"cookie": "c1"}
LOGIN = {**JANE, **COOKIE}
# each side's properties, written by one command each: some newer on each
# side, ties decided each way (canonical JSON order), a deletion newer than the
# other side's value
JANE_PROPERTIES = {
    **versions({"a": "jane-a", "only_jane": 1}, 10.0),
    **versions({"b": "jane-b", "c": "c-jane", "d": "d-z-jane", "e": "jane-e"}, 20.0),
}
ANONYMOUS_PROPERTIES = {
    **versions({"b": "anon-b", "only_anon": 2}, 12.0),
    **versions({"a": "anon-a", "c": "c-z-anon", "d": "d-anon"}, 20.0),
    **versions({"e": None}, 30.0),
}
LOGIN_WRITE = ({"login": "yes", "a": "aa-login", "c": "c-zz-login"}, 20.0)

ORDERS = ("jane-first", "anonymous-first")  # which customer is older: the destination


@dataclass
class Scenario:
    """jane and an anonymous customer, each with its properties, in a
    project of their own."""

    store: CustomerStore
    project: str
    ledger: Ledger
    jane: str
    anonymous: str

    @classmethod
    def set_up(cls, store: CustomerStore, order: str, project: str | None = None) -> Scenario:
        """Each customer as a first sighting creates it (the claim of its id,
        then one write of its properties that records the id), with ULIDs a
        few milliseconds apart so that ``order`` decides which is older."""
        project, ledger = project or new_project(store), Ledger()
        now = time.time()
        older, younger = new_customer_id(now), new_customer_id(now + 0.005)
        assert older < younger
        jane, anonymous = (older, younger) if order == "jane-first" else (younger, older)
        for customer, ids, properties in (
            (jane, JANE, JANE_PROPERTIES),
            (anonymous, COOKIE, ANONYMOUS_PROPERTIES),
        ):
            ((id_type, value),) = ids.items()
            assert store.identities.claim(project, id_type, value, customer) == customer
            ledger.write_new(store, project, customer, ids, properties)
        return cls(store, project, ledger, jane, anonymous)

    @property
    def destination(self) -> str:  # the older customer
        return min(self.jane, self.anonymous)

    @property
    def source(self) -> str:
        return max(self.jane, self.anonymous)

    def update(self, ids: dict[str, str], write: tuple[dict[str, Any], float]) -> UpdateResult:
        return self.ledger.update(self.store, self.project, ids, *write)

    def login(self) -> UpdateResult:
        return self.update(LOGIN, LOGIN_WRITE)

    def problems(self) -> list[str]:
        """Read only: what keeps this state from being the merged customer."""
        return merge_problems(
            self.store, self.project, LOGIN, [self.jane, self.anonymous], self.ledger
        )

    def reader_problems(self) -> list[str]:
        """Both ids, and the source's internal id, reach the merged customer
        through the public reads (which help a merge along: run them after
        ``problems``)."""
        final = self.destination
        # a read by an id: the customer its identity item names, followed
        # through merges (functions/customers/app.py: _customer_in_path, _read)
        found = {}
        for pair in LOGIN.items():
            owner = find_customer_id(self.store, self.project, *pair)
            record = owner and read_following_merges(self.store, self.project, owner)
            found[pair] = record and record.customer_id
        read = {self.source: read_following_merges(self.store, self.project, self.source)}
        return [
            *(
                f"id {pair} finds {owner}, not {final}"
                for pair, owner in found.items()
                if owner != final
            ),
            *(
                f"reading {customer} shows {record and record.customer_id}, not {final}"
                for customer, record in read.items()
                if record is None or record.customer_id != final
            ),
        ]


@dataclass(frozen=True)
class LoginRequests:
    """The requests of an uncontended login, as counted on the engine."""

    count: int
    mark: int  # the request (1-based) that marks the source merged
    last_copy: int  # the last request copying the source's properties

    @classmethod
    def count_them(
        cls, store: CustomerStore, request_log: Any, counter: CrashAt, order: str
    ) -> LoginRequests:
        scenario = Scenario.set_up(store, order)
        request_log.clear()
        counter.count()
        assert scenario.login().merged == (scenario.source,)
        assert counter.sent == len(request_log.calls)  # no request was retried
        updates = [
            (index, params)
            for index, (name, params) in enumerate(request_log.calls, start=1)
            if name == "UpdateItem"
        ]
        mark = next(i for i, p in updates if p["UpdateExpression"] == "SET #merged = :dest")
        first_move = next(i for i, p in updates if p["UpdateExpression"] == "SET cid = :new")
        destination_key = {"pk": {"S": f"{scenario.project}#c#{scenario.destination}"}}
        copies = [
            i
            for i, p in updates
            if mark < i < first_move
            and p["Key"] == destination_key
            and any(n.startswith("p:") for n in p["ExpressionAttributeNames"].values())
        ]
        assert copies, request_log.calls
        return cls(count=counter.sent, mark=mark, last_copy=copies[-1])
