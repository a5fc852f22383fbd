"""The outbox acts on what a transport says became of each message: delivered, refused (that
message only) or unreachable (the rest of that service's messages wait, untried)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from leadprep.chat import ChatMessage
from leadprep.model import Delivery
from leadprep.outbox import Delivered, Handover, Refused, Unreachable, deliver
from leadprep.store import Store

AS_OF = date(2026, 11, 30)


class Recording:
    """A transport that answers from ``answers`` (kind -> Handover) and counts its calls."""

    def __init__(self, answers: dict[str, Handover]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    def scope(self, delivery: Delivery) -> str:
        return delivery.kind

    def send(self, delivery: Delivery, payload: bytes) -> Handover:
        self.calls.append((delivery.kind, delivery.recipient))
        return self.answers[delivery.kind]

    def close(self) -> None:
        pass


def messages() -> list[ChatMessage]:
    return [
        ChatMessage(kind, f"{who}@example.com", {"text": f"{kind} for {who}"})
        for kind in ("slack", "teams")
        for who in ("dana", "lee", "max")
    ]


def test_an_unreachable_service_is_tried_once_and_the_other_service_still_goes(tmp_path: Path):
    down = Recording(
        {"slack": Unreachable("cannot reach Slack (ConnectError)", "slack"), "teams": Delivered()}
    )
    with Store.open(tmp_path / "state.db") as store:
        report = deliver(store, messages(), lambda: down, out_dir=tmp_path, as_of=AS_OF)
        assert [kind for kind, _ in down.calls].count("slack") == 1  # one outage, one try
        failed = [o for o in report.outcomes if o.status == "failed"]
        assert {o.kind for o in failed} == {"slack"} and len(failed) == 3
        assert all(o.detail == "cannot reach Slack (ConnectError)" for o in failed)
        assert sum(o.status == "sent" for o in report.outcomes) == 3  # Teams went out

        up = Recording({"slack": Delivered(), "teams": Delivered()})
        again = deliver(store, messages(), lambda: up, out_dir=tmp_path, as_of=AS_OF)
        assert sorted(up.calls) == sorted(
            ("slack", f"{w}@example.com") for w in ("dana", "lee", "max")
        )  # each queued Slack post once, no Teams post twice
        assert sum(o.status == "sent" for o in again.outcomes) == 3


def test_a_refused_message_does_not_stop_the_others(tmp_path: Path):
    class OneRefused(Recording):
        def send(self, delivery: Delivery, payload: bytes) -> Handover:
            self.calls.append((delivery.kind, delivery.recipient))
            if delivery.recipient.startswith("lee"):
                return Refused("Slack refused the message (404 no_service)")
            return Delivered()

    transport = OneRefused({})
    with Store.open(tmp_path / "state.db") as store:
        report = deliver(store, messages()[:3], lambda: transport, out_dir=tmp_path, as_of=AS_OF)
    assert len(transport.calls) == 3
    assert [o.status for o in report.outcomes] == ["sent", "failed", "sent"]
