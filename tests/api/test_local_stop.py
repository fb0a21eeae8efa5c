"""`make run` in the queued mode holds accepted commands in the moto
server's memory: on stop it applies them before the server goes, and says
what it did (propsync_local.stack._apply_what_is_queued)."""

from __future__ import annotations

import pytest

from propsync_local import stack


@pytest.fixture
def tracking_writes() -> str:
    return "queued"


def test_stopping_applies_what_the_tracking_queue_holds_and_says_so(api, capsys):
    with api.worker_stopped() as queues:
        for name in ("late-1", "late-2"):
            api.track({"registered": name}, {"tier": "gold"}, 100)
        capsys.readouterr()

        stack._apply_what_is_queued(queues.url)

        assert capsys.readouterr().err == "stopping: applied 2 queued tracking messages\n"
        assert queues.deliver() == 0
    for name in ("late-1", "late-2"):
        assert api.export_one({"registered": name}).json()["properties"] == {"tier": "gold"}


def test_stopping_says_what_could_not_be_applied(api, capsys, monkeypatch):
    monkeypatch.setattr("propsync.tracking_queue.RETRY_BASE_SECONDS", 60.0)
    with api.worker_stopped() as queues:
        api.track({"registered": "doomed"}, {"tier": "gold"}, 100)
        monkeypatch.setenv("PROPSYNC_TABLE_NAME", "no-such-table")
        from propsync.container import forget_container_state  # noqa: PLC0415

        forget_container_state()
        capsys.readouterr()

        stack._apply_what_is_queued(queues.url)

    assert capsys.readouterr().err == (
        "stopping: applied 0 queued tracking messages; 1 failed and are lost with the "
        "in-memory queue\n"
    )


def test_stopping_without_the_aws_server_says_the_commands_are_lost(api, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    stack._apply_what_is_queued(api.queues.url)
    err = capsys.readouterr().err
    assert err.startswith("stopping: the queued tracking commands could not be applied (")
    assert err.endswith("they are lost with the in-memory queue\n")
