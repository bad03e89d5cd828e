"""Notice files (relance.risk.files.read_notice_file): every payload shape a user may hand ``relance risk import``,
and a clear error for everything else."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from relance.risk.classify import bodacc_events
from relance.risk.files import read_notice_file

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "risk_samples"
OBSERVED = date(2026, 3, 1)


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copyfile(SAMPLES / name, target)
    return target


def _write(tmp_path: Path, payload: Any, name: str = "notices.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return path


def _v21() -> dict[str, Any]:
    return json.loads((SAMPLES / "bodacc_v21_records_examples.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------------------
def test_bodacc_v21_envelope(tmp_path):
    events, profiles = read_notice_file(_copy(tmp_path, "bodacc_v21_records_examples.json"))
    assert profiles == []
    assert [e.event_id for e in events] == [r["id"] for r in _v21()["results"]]


def test_bodacc_v1_envelope(tmp_path):
    events, profiles = read_notice_file(_copy(tmp_path, "bodacc_v1_records_search_registre_880878145.json"))
    assert profiles == [] and {e.company_id for e in events} == {"880878145"}
    assert sorted(e.event_type for e in events) == ["accounts_filed", "accounts_filed", "closure"]


def test_bodacc_v2_0_envelope(tmp_path):
    records = _v21()["results"]
    payload = {"total_count": len(records), "records": [{"record": {"id": r["id"], "fields": r}} for r in records]}
    events, _ = read_notice_file(_write(tmp_path, payload))
    assert events == bodacc_events(records)


def test_a_json_list_of_records_and_a_single_record(tmp_path):
    records = _v21()["results"]
    assert read_notice_file(_write(tmp_path, records))[0] == bodacc_events(records)
    single, _ = read_notice_file(_write(tmp_path, records[0], "one.json"))
    assert [e.event_id for e in single] == ["A202002333642"]


def test_json_lines_export(tmp_path):
    records = _v21()["results"]
    path = tmp_path / "export.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n", encoding="utf-8")
    events, profiles = read_notice_file(path)
    assert events == bodacc_events(records) and profiles == []


def test_an_empty_bodacc_answer_is_no_event(tmp_path):
    assert read_notice_file(_write(tmp_path, {"total_count": 0, "results": []})) == ([], [])


def test_recherche_payload_gives_profiles_observed_on_the_given_day_or_the_file_day(tmp_path):
    path = _copy(tmp_path, "recherche_entreprises_search_q_552032534.json")
    events, profiles = read_notice_file(path, observed_date=OBSERVED)
    assert events == [] and [p.profile_id for p in profiles] == ["recherche_entreprises:FR-SIREN:552032534:2026-03-01"]
    stamp = datetime(2025, 7, 14, 12, 0).timestamp()
    os.utime(path, (stamp, stamp))
    _, profiles = read_notice_file(path)
    assert profiles[0].observed_date == date(2025, 7, 14)
    _, carrefour = read_notice_file(_copy(tmp_path, "recherche_entreprises_search_q_carrefour_per_page_1.json"))
    assert carrefour[0].company_id == "510761505"


def test_companies_house_profile_file(tmp_path):
    path = _copy(tmp_path, "companies_house_company_profile_00006402.json")
    events, profiles = read_notice_file(path, observed_date=OBSERVED)
    assert [p.company_id for p in profiles] == ["00006402"] and profiles[0].is_accounts_overdue is True
    assert [e.event_type for e in events] == ["accounts_overdue"]


def test_companies_house_insolvency_needs_its_company_number(tmp_path):
    cases = json.loads((SAMPLES / "companies_house_insolvency_by_company_number.json").read_text(encoding="utf-8"))
    wrapped = _write(tmp_path, {"company_number": "04271746", "insolvency": cases["04271746"]}, "wrapped.json")
    events, profiles = read_notice_file(wrapped, observed_date=OBSERVED)
    assert profiles == [] and [e.event_subtype for e in events] == [
        "in-administration",
        "creditors-voluntary-liquidation",
    ]
    linked = {**cases["11519482"], "links": {"self": "/company/11519482/insolvency"}}
    events, _ = read_notice_file(_write(tmp_path, linked, "linked.json"), observed_date=OBSERVED)
    assert [e.company_id for e in events] == ["11519482"]
    with pytest.raises(ValueError, match=r"bare\.json: a Companies House insolvency record does not name its company"):
        read_notice_file(_write(tmp_path, cases["11519482"], "bare.json"))


def test_companies_house_insolvency_by_number_and_a_bundle_with_profile_and_officers(tmp_path):
    events, _ = read_notice_file(
        _copy(tmp_path, "companies_house_insolvency_by_company_number.json"), observed_date=OBSERVED
    )
    assert {e.company_id for e in events} == {"04271746", "10762530", "11519482"}
    officers = json.loads((SAMPLES / "companies_house_officers_10241297.json").read_text(encoding="utf-8"))
    bundle = {
        "company_number": "10241297",
        "profile": {"company_name": "X LTD", "company_status": "active"},
        "officers": officers,
    }
    events, profiles = read_notice_file(_write(tmp_path, bundle), observed_date=OBSERVED)
    assert [p.company_id for p in profiles] == ["10241297"]
    assert [e.event_type for e in events] == ["director_change", "director_change"]


def test_companies_house_officer_list_names_its_company_by_its_link(tmp_path):
    events, _ = read_notice_file(_copy(tmp_path, "companies_house_officers_10241297.json"), observed_date=OBSERVED)
    assert {e.company_id for e in events} == {"10241297"} and len(events) == 2


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(_v21()).encode("utf-8"))
    assert len(read_notice_file(path)[0]) == 5


# ---------------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------------
def test_non_utf8_bytes_name_the_offset(tmp_path):
    path = tmp_path / "latin1.json"
    data = '{"total_count": 1,\n "results": [{"commercant": "Société"}]}'.encode("latin-1")
    path.write_bytes(data)
    assert data.index(b"\xe9") == 52
    with pytest.raises(ValueError, match=r"latin1\.json: not UTF-8: byte 0xe9 at byte offset 52 \(line 2\)"):
        read_notice_file(path)


def test_malformed_json_names_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"total_count": 1,\n "results": [\n  {"id": "A1",}\n]}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json: malformed JSON at line 3, column 15"):
        read_notice_file(path)


def test_malformed_json_lines_name_the_line(tmp_path):
    good = json.dumps(_v21()["results"][0])
    path = tmp_path / "export.jsonl"
    path.write_text(f'{good}\n{good}\n{{"id": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"export\.jsonl: malformed JSON Lines record at line 3"):
        read_notice_file(path)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"foo": 1}, r"unknown payload with keys \['foo'\]; expected a BODACC payload"),
        (42, "a JSON int is not a notice file"),
        ([{"siren": "552032534"}], r"list item\[0\] is not a BODACC record"),
        ([1, 2], r"list item\[0\] is not a BODACC record .*got int"),
        ({"total_count": 1, "results": {"id": "x"}}, "results is not a list of BODACC records"),
        ({"results": [{"nom": "x"}], "total_results": 1}, "must be a list of objects with a 'siren'"),
        ({"results": [{"siren": "12"}], "total_results": 1}, "without a valid SIREN"),
        ({"company_number": "1", "insolvency": {"x": 1}}, "is not a Companies House insolvency record"),
        ({"kind": "officer-list", "items": []}, "officer list without links.self"),
    ],
)
def test_unknown_or_inconsistent_shapes_are_refused_with_what_was_expected(tmp_path, payload, message):
    with pytest.raises(ValueError, match=r"odd\.json: .*" + message):
        read_notice_file(_write(tmp_path, payload, "odd.json"))


def test_empty_missing_directory_and_oversized_files(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.json: empty file"):
        read_notice_file(empty)
    with pytest.raises(ValueError, match="missing.json: no such file"):
        read_notice_file(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="not a file"):
        read_notice_file(tmp_path)
    big = _copy(tmp_path, "bodacc_v21_records_examples.json")
    with pytest.raises(ValueError, match=r"over the 1,000-byte cap for one notice file; nothing was read"):
        read_notice_file(big, max_bytes=1000)
