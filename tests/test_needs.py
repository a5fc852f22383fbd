"""One list of the inputs a check needs (leadprep.needs.Need), shared by the signals and the
connectors: a key one side writes is always a key the other reads."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from leadprep.connectors.file import FileConnector, FileSettings
from leadprep.needs import Need
from leadprep.signals import REGISTRY
from leadprep.store import Store


def declared() -> set[Need]:
    return {need for signal in REGISTRY.values() for need in signal.needs}


def test_every_need_a_signal_declares_is_a_need_and_every_need_is_declared():
    for signal in REGISTRY.values():
        assert all(isinstance(need, Need) for need in signal.needs), signal.code
    assert declared() == set(Need)


def test_every_key_the_file_connector_reports_is_one_a_signal_declares(tmp_path: Path):
    bare = tmp_path / "bare.csv"  # only the required columns: every optional input missing
    bare.write_text("deal_id,deal_name,owner_email,stage\nD-1,Acme,a@x.co,Proposal\n")
    result = FileConnector(FileSettings(path=bare)).fetch(None, date(2026, 11, 30))
    assert result.unsupported, "a bare export carries none of the optional inputs"
    assert all(isinstance(key, Need) for key in result.unsupported)
    assert set(result.unsupported) == declared()  # and each is one a signal switches off for


def test_a_run_reads_back_its_needs_and_drops_one_no_release_knows(tmp_path: Path):
    with Store.open(tmp_path / "state.db") as store:
        store.runs.record(
            date(2026, 11, 30), "file", [], {Need.AMOUNT: "no amounts", "telepathy": "gone"}
        )
        review = store.runs.latest(date(2026, 11, 30))
    assert review is not None and review.unsupported == {Need.AMOUNT: "no amounts"}
    assert isinstance(next(iter(review.unsupported)), Need)
