"""The audit log is append-only and tamper-evident."""

from __future__ import annotations

from svduty.privacy import audit


def test_chain_verifies_and_detects_an_edit(tmp_path):
    for n in range(3):
        audit.record(tmp_path, "export", table="events", rows=n)
    assert audit.verify(tmp_path) is None
    assert [e["details"]["rows"] for e in audit.entries(tmp_path)] == [0, 1, 2]
    path = tmp_path / audit.AUDIT_FILE
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"rows": 1', '"rows": 100')
    path.write_text("\n".join(lines) + "\n")
    assert audit.verify(tmp_path) == 3  # the line after the edited one no longer chains


def test_deleting_a_line_is_detected(tmp_path):
    for n in range(3):
        audit.record(tmp_path, "ingest", load_id=n)
    path = tmp_path / audit.AUDIT_FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert audit.verify(tmp_path) == 2
