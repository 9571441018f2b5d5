"""The shared JSONL records helper behind every resumable benchmark."""

from __future__ import annotations

from genms_pmg.evaluation.records import append_record, read_records, write_records


def test_records_survive_a_cut_line_and_rewrite_atomically(tmp_path):
    path = tmp_path / "sub" / "records.jsonl"
    append_record(path, {"key": "a", "value": 1})
    append_record(path, {"key": "b", "value": 2})
    with open(path, "a") as fh:
        fh.write('{"key": "c", "val')  # an interruption in the middle of a line
    assert [r["key"] for r in read_records(path)] == ["a", "b"]
    write_records(path, [{"key": "z"}])
    assert read_records(path) == [{"key": "z"}] and not list(path.parent.glob(".*tmp*"))
    assert read_records(tmp_path / "missing.jsonl") == []
