"""The company-risk clients against local stand-ins that speak the registries' wire format.

The stand-ins are in tests/standins/risk_apis.py.

Real payloads (BODACC v2.1 records, DANONE and CARREFOUR from Recherche d'entreprises, Companies House profile,
insolvency cases and officers) go through the real HTTP stack; faults are injected at the stand-in: 400 bodies,
404 for no insolvency case, 429 with Retry-After, 500, timeouts, malformed JSON, Latin-1 bytes. Retries wait through
an injected recorder (the waits are asserted, not slept), cache ages through an injected clock.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from relance.risk.bodacc import RECORDS_PATH, BodaccClient
from relance.risk.companies_house import CompaniesHouseClient
from relance.risk.http import HttpOptions, RiskSourceError
from relance.risk.recherche import PUBLISHER as RECHERCHE
from relance.risk.recherche import RechercheEntreprisesClient
from tests.conftest import require
from tests.standins.risk_apis import (
    MALFORMED_JSON,
    PAGED_COMPANY,
    PER_PAGE_ERROR,
    SOLVENT_COMPANY,
    BodaccStandIn,
    CannedResponse,
    CompaniesHouseStandIn,
    RechercheStandIn,
    canned_json,
    generate_notices,
    latin1_bytes,
    load_sample,
    samples_available,
)

pytestmark = pytest.mark.integration

DANONE = "552032534"
CARREFOUR_CTIM = "510761505"
LA_POSTE = "356000000"  # a valid SIREN the stand-in does not know


class SleepRecorder:
    """Stands in for time.sleep in the retries: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def fast(**overrides: Any) -> HttpOptions:
    """Tiny waits and timeouts so the whole file stays fast; no rate limit unless a test asks for one."""
    values: dict[str, Any] = {
        "timeout": 2.0,
        "max_attempts": 4,
        "backoff_base": 0.01,
        "backoff_max": 0.02,
        "max_wait_seconds": 0.05,
        "min_interval_seconds": 0.0,
    }
    values.update(overrides)
    return HttpOptions(**values)


@pytest.fixture(autouse=True)
def _samples() -> None:
    require(samples_available(), "shared/data/risk_samples not found next to the repository")


@pytest.fixture
def bodacc() -> Iterator[BodaccStandIn]:
    with BodaccStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def recherche() -> Iterator[RechercheStandIn]:
    with RechercheStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def companies_house() -> Iterator[CompaniesHouseStandIn]:
    with CompaniesHouseStandIn() as stand_in:
        yield stand_in


def _raises(call: Any) -> RiskSourceError:
    with pytest.raises(RiskSourceError) as info:
        call()
    return info.value


# --- BODACC -----------------------------------------------------------------------------------------------------


def test_bodacc_real_records_come_back_as_served(bodacc: BodaccStandIn) -> None:
    with BodaccClient(bodacc.url, options=fast()) as client:
        records = list(client.notices(["552 032 534"], since=None))
    assert [r["id"] for r in records] == ["B202501222451"]
    danone = records[0]
    assert danone["commercant"] == "DANONE" and danone["familleavis"] == "modification"
    assert danone["region_nom_officiel"] == "Île-de-France"  # UTF-8 accents intact
    assert sorted(danone["registre"]) == ["552 032 534", "552032534"]
    # nested blocks stay JSON strings: the classifier parses them
    assert isinstance(danone["listepersonnes"], str)
    assert json.loads(danone["listepersonnes"])["personne"]["formeJuridique"] == "Société anonyme"
    (request,) = bodacc.requests
    assert request.path == RECORDS_PATH
    assert request.param("where") == 'registre="552032534"'
    assert request.param("order_by") == "dateparution asc, id asc"
    assert request.param("limit") == "100" and request.param("offset") == "0"
    assert request.headers["User-Agent"].startswith("relance/")


def test_bodacc_several_sirens_in_one_query_and_the_watermark_reaches_the_server(bodacc: BodaccStandIn) -> None:
    sirens = ["833310592", "482309382", "752461681", "880878145", DANONE]
    with BodaccClient(bodacc.url, options=fast()) as client:
        everything = list(client.notices(sirens, since=None))
        recent = list(client.notices(sirens, since=date(2022, 1, 1)))
    assert len(everything) == 5
    assert [(r["dateparution"], r["id"]) for r in recent] == [
        ("2022-11-23", "B20220227446"),
        ("2025-01-26", "C202500182618"),
        ("2025-06-27", "B202501222451"),
    ]
    where = bodacc.requests[-1].param("where")
    assert where == (
        'registre in ("482309382", "552032534", "752461681", "833310592", "880878145") '
        "AND dateparution>=date'2022-01-01'"
    )


def test_bodacc_sirens_are_chunked_and_a_notice_naming_two_debtors_comes_once(bodacc: BodaccStandIn) -> None:
    sale = dict(load_sample("bodacc_v21_records_examples.json")["results"][0])
    sale.update(id="A202500990001", registre=["833310592", "833 310 592", "880878145", "880 878 145"])
    bodacc.add_records([sale])
    with BodaccClient(bodacc.url, options=fast(), sirens_per_query=1) as client:
        records = list(client.notices(["833310592", "880878145"], since=None))
    ids = [r["id"] for r in records]
    assert len(bodacc.requests) == 2  # one query per chunk
    assert sorted(ids) == ["A202002333642", "A202500990001", "B20220227446"]
    assert len(ids) == len(set(ids))


def test_bodacc_families_are_validated_client_side(bodacc: BodaccStandIn) -> None:
    with BodaccClient(bodacc.url, options=fast()) as client:
        collective = list(client.notices(["833310592", "752461681"], since=None, families=["collective"]))
        assert [r["id"] for r in collective] == ["A202002333642"]
        assert bodacc.requests[-1].param("where").endswith('AND familleavis="collective"')
        asked = len(bodacc.requests)
        with pytest.raises(ValueError, match="procedure_collective"):
            client.notices(["833310592"], since=None, families=["procedure_collective"])
        with pytest.raises(ValueError, match="not a SIREN"):
            client.notices(["55203253"], since=None)
        with pytest.raises(ValueError):
            client.notices_published(date(2025, 1, 2), until=date(2025, 1, 1))
    assert len(bodacc.requests) == asked  # nothing invalid was sent


def test_bodacc_published_window_is_the_daily_delta(bodacc: BodaccStandIn) -> None:
    with BodaccClient(bodacc.url, options=fast()) as client:
        delta = list(client.notices_published(date(2025, 1, 1), date(2025, 6, 30), families=["dpc", "modification"]))
    assert [r["id"] for r in delta] == ["C202500182618", "B202501222451"]
    assert bodacc.requests[-1].param("where") == (
        "dateparution>=date'2025-01-01' AND dateparution<=date'2025-06-30' "
        'AND familleavis in ("dpc", "modification")'
    )


def test_bodacc_pages_past_the_10000_row_window_by_keyset() -> None:
    siren = "732829320"
    generated = generate_notices(siren, 10_250)
    others = generate_notices("880878145", 40, start=date(2015, 3, 1))  # same dates, another debtor
    with BodaccStandIn(generated + others) as bodacc, BodaccClient(bodacc.url, options=fast()) as client:
        ids = [r["id"] for r in client.notices([siren], since=None)]
        requests = list(bodacc.requests)

    expected = [r["id"] for r in sorted(generated, key=lambda r: (r["dateparution"], r["id"]))]
    assert len(ids) == 10_250 and len(set(ids)) == 10_250
    assert ids == expected  # all once, in order: no gap, no duplicate at the switch
    assert all(r.status == 200 for r in requests)
    offsets = [int(r.param("offset") or 0) for r in requests]
    limits = [int(r.param("limit") or 0) for r in requests]
    assert max(offsets) == 9_900
    assert all(o + n <= 10_000 for o, n in zip(offsets, limits, strict=True))
    keyset = [r for r in requests if "dateparution > date'" in (r.param("where") or "")]
    assert len(requests) == 100 + len(keyset) and len(keyset) == 3
    assert all(r.param("offset") == "0" for r in keyset)
    first = keyset[0].param("where")
    last_of_window = expected[9_999]
    day = next(r["dateparution"] for r in generated if r["id"] == last_of_window)
    assert first == (
        f"(registre=\"{siren}\") AND (dateparution > date'{day}' OR "
        f"(dateparution = date'{day}' AND id > \"{last_of_window}\"))"
    )


def test_bodacc_stand_in_refuses_what_the_platform_refuses(bodacc: BodaccStandIn) -> None:
    with BodaccClient(bodacc.url, options=fast()) as client:
        window = _raises(lambda: client.source.get_json(RECORDS_PATH, {"limit": 100, "offset": 9_901}))
        limit = _raises(lambda: client.source.get_json(RECORDS_PATH, {"limit": 101}))
        odsql = _raises(lambda: client.source.get_json(RECORDS_PATH, {"where": "registre ~ '552032534'"}))
    assert (window.kind, window.status) == ("bad_request", 400)
    assert "offset+limit <= 10000" in (window.detail or "")
    assert "-1 <= limit <= 100" in (limit.detail or "")
    assert odsql.detail is not None and odsql.detail.startswith("ODSQLError: ODSQL query is malformed")
    assert "ODSQLError" in str(odsql) and RECORDS_PATH in str(odsql)
    assert len(bodacc.requests) == 3  # a 400 is never retried


def test_bodacc_wrong_envelope_is_a_bad_payload(bodacc: BodaccStandIn) -> None:
    v20 = {"total_count": 1, "records": [{"record": {"id": "x", "fields": {}}}]}
    bodacc.enqueue(canned_json(200, v20), canned_json(200, {"total_count": 1, "results": [{"id": 1}]}))
    with BodaccClient(bodacc.url, options=fast()) as client:
        envelope = _raises(lambda: list(client.notices([DANONE], since=None)))
        record = _raises(lambda: list(client.notices([DANONE], since=None)))
    assert envelope.kind == "bad_payload" and "results" in str(envelope)
    assert record.kind == "bad_payload" and "dateparution" in str(record)


# --- faults: retries, quota, outages, bytes ----------------------------------------------------------------------


def test_429_with_retry_after_is_honoured_then_succeeds(recherche: RechercheStandIn) -> None:
    sleep = SleepRecorder()
    retry_at = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    recherche.enqueue(
        CannedResponse(429, b"Too Many Requests", {"Retry-After": "2"}),
        CannedResponse(429, b"Too Many Requests", {"Retry-After": retry_at}),
        CannedResponse(429, b"Too Many Requests", {"Retry-After": "600"}),
    )
    with RechercheEntreprisesClient(recherche.url, options=fast(sleep=sleep, max_wait_seconds=30)) as client:
        company = client.company(DANONE)
    assert company is not None and company["nom_complet"] == "DANONE"
    assert [r.status for r in recherche.requests] == [429, 429, 429, 200]
    assert sleep.waits[0] == 2.0  # delta-seconds, as given
    assert 1.0 < sleep.waits[1] <= 3.0  # HTTP date, counted from now
    assert sleep.waits[2] == 30  # capped by max_wait_seconds


def test_429_forever_is_a_quota_error(recherche: RechercheStandIn) -> None:
    recherche.fail_always(429, headers={"Retry-After": "1"}, body=b"Too Many Requests")
    sleep = SleepRecorder()
    with RechercheEntreprisesClient(recherche.url, options=fast(max_attempts=3, sleep=sleep)) as client:
        error = _raises(lambda: client.company(DANONE))
    assert (error.kind, error.status, error.publisher) == ("quota", 429, RECHERCHE)
    assert error.is_transient and error.retry_after == 1.0
    assert len(recherche.requests) == 3 and len(sleep.waits) == 2
    assert "gave up after 3 attempts" in str(error)


def test_500_then_success_and_500_forever_is_unavailable(bodacc: BodaccStandIn) -> None:
    sleep = SleepRecorder()
    with BodaccClient(bodacc.url, options=fast(sleep=sleep)) as client:
        bodacc.fail_next(2, 500)
        assert [r["id"] for r in client.notices([DANONE], since=None)] == ["B202501222451"]
        assert [r.status for r in bodacc.requests] == [500, 500, 200]
        assert len(sleep.waits) == 2 and all(0 <= w <= 0.05 for w in sleep.waits)  # backoff, capped

        bodacc.fail_always(503, body=b"<html>Service Unavailable</html>")
        error = _raises(lambda: list(client.notices([DANONE], since=None)))
    assert (error.kind, error.status) == ("unavailable", 503)
    assert "Service Unavailable" in str(error)
    assert len(bodacc.requests) == 3 + 4  # max_attempts


def test_a_timeout_is_retried_then_unavailable(recherche: RechercheStandIn) -> None:
    options = fast(timeout=0.25, max_attempts=3)
    with RechercheEntreprisesClient(recherche.url, options=options) as client:
        recherche.delay_next(1, 1.0)
        assert client.company(DANONE) is not None  # the second attempt answers
        recherche.delay_next(3, 1.0)
        error = _raises(lambda: client.company(DANONE))
    assert error.kind == "unavailable" and error.status is None
    assert "timed out after 0.25 s" in str(error)
    assert len(recherche.requests) == 2 + 3


def test_a_refused_connection_is_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with RechercheEntreprisesClient(f"http://127.0.0.1:{port}", options=fast(max_attempts=2)) as client:
        error = _raises(lambda: client.company(DANONE))
    assert error.kind == "unavailable" and "connection failed" in str(error)


@pytest.mark.parametrize(
    ("status", "kind"), [(400, "bad_request"), (401, "auth"), (403, "auth"), (404, "not_found"), (422, "bad_request")]
)
def test_client_errors_are_never_retried(bodacc: BodaccStandIn, status: int, kind: str) -> None:
    bodacc.fail_always(status, body=b'{"error_code": "X", "message": "no"}')
    with BodaccClient(bodacc.url, options=fast()) as client:
        error = _raises(lambda: list(client.notices([DANONE], since=None)))
    assert (error.kind, error.status, error.detail) == (kind, status, "X: no")
    assert len(bodacc.requests) == 1


def test_malformed_json_is_a_bad_payload_and_not_retried(bodacc: BodaccStandIn) -> None:
    bodacc.enqueue(CannedResponse(200, MALFORMED_JSON, {"Content-Type": "application/json"}))
    with BodaccClient(bodacc.url, options=fast()) as client:
        error = _raises(lambda: list(client.notices([DANONE], since=None)))
    assert error.kind == "bad_payload" and "malformed JSON" in str(error)
    assert len(bodacc.requests) == 1


def test_utf8_is_decoded_explicitly_and_latin1_bytes_are_a_bad_payload(recherche: RechercheStandIn) -> None:
    payload = load_sample("recherche_entreprises_search_q_552032534.json")
    latin1 = latin1_bytes(payload)
    first_non_ascii = next(i for i, b in enumerate(latin1) if b > 0x7F)
    # a server that claims Latin-1 but sends UTF-8 (the registries' case): we decode UTF-8 regardless
    lying = CannedResponse(
        200, json.dumps(payload, ensure_ascii=False).encode(), {"Content-Type": "text/json; charset=iso-8859-1"}
    )
    recherche.enqueue(lying, CannedResponse(200, latin1, {"Content-Type": "application/json"}))
    with RechercheEntreprisesClient(recherche.url, options=fast()) as client:
        company = client.company(DANONE)
        assert company is not None and company["dirigeants"][0]["qualite"] == "Directeur Général"
        error = _raises(lambda: client.company(DANONE))
    assert error.kind == "bad_payload"
    assert f"not UTF-8: byte b'\\xe9' at offset {first_non_ascii}" in str(error)
    assert len(recherche.requests) == 2


# --- Recherche d'entreprises ---------------------------------------------------------------------------------------


def test_recherche_real_payloads(recherche: RechercheStandIn) -> None:
    with RechercheEntreprisesClient(recherche.url, options=fast()) as client:
        danone = client.company("552 032 534")
        ctim = client.company(CARREFOUR_CTIM)
        unknown = client.company(LA_POSTE)
    assert danone is not None and danone["siren"] == DANONE
    assert danone["finances"] == {"2022": {"ca": 24281000000, "resultat_net": 0}}
    assert danone["etat_administratif"] == "A" and danone["tranche_effectif_salarie"] == "42"
    assert ctim is not None and ctim["nom_complet"] == "CARREFOUR (CTIM)" and ctim["finances"] is None
    assert unknown is None  # total_results == 0
    assert [(r.param("q"), r.param("page"), r.param("per_page")) for r in recherche.requests] == [
        (DANONE, "1", "1"),
        (CARREFOUR_CTIM, "1", "1"),
        (LA_POSTE, "1", "1"),
    ]


def test_recherche_rejects_a_bad_siren_before_any_request(recherche: RechercheStandIn) -> None:
    with RechercheEntreprisesClient(recherche.url, options=fast()) as client:
        for bad in ("552032535", "55203253", "ABCDEFGHI", ""):
            with pytest.raises(ValueError, match="not a valid SIREN"):
                client.company(bad)
    assert recherche.requests == []


def test_recherche_400_bodies_surface_the_api_message(recherche: RechercheStandIn) -> None:
    errors = load_sample("recherche_entreprises_error_payloads.json")
    with RechercheEntreprisesClient(recherche.url, options=fast()) as client:
        short = _raises(lambda: client.source.get_json("/search", {"q": "ab"}))
        none = _raises(lambda: client.source.get_json("/search", {}))
        per_page = _raises(lambda: client.source.get_json("/search", {"q": DANONE, "per_page": 26}))
    assert (short.kind, short.status) == ("bad_request", 400)
    assert short.detail == errors["400_query_too_short"]["erreur"]
    assert none.detail == errors["400_no_param"]["erreur"]
    assert per_page.detail == PER_PAGE_ERROR and PER_PAGE_ERROR in str(per_page)


def _max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t - start < 1.0) for i, start in enumerate(times))


def test_recherche_never_exceeds_7_requests_per_second_across_threads(recherche: RechercheStandIn) -> None:
    sirens = [DANONE, CARREFOUR_CTIM, LA_POSTE, "732829320"]
    failures: list[BaseException] = []

    def look_up_all(client: RechercheEntreprisesClient) -> None:
        try:
            for siren in sirens:
                client.company(siren)
        except BaseException as exc:  # surfaced below: a thread's exception would otherwise be lost
            failures.append(exc)

    with RechercheEntreprisesClient(recherche.url, options=fast(min_interval_seconds=None)) as client:
        workers = [threading.Thread(target=look_up_all, args=(client,)) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert failures == []
    times = [r.at for r in recherche.requests]
    assert len(times) == 16
    assert all(r.status == 200 for r in recherche.requests)  # the stand-in never had to say 429
    assert _max_in_any_second(times) <= 7

    # the check bites: without the limiter the same burst breaks the rule (and the stand-in answers 429)
    burst = RechercheStandIn(max_per_second=None).start()
    try:
        with RechercheEntreprisesClient(burst.url, options=fast()) as unlimited:
            for _ in range(10):
                unlimited.company(DANONE)
        assert _max_in_any_second([r.at for r in burst.requests]) > 7
    finally:
        burst.stop()


# --- cache and staleness -----------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_cache_serves_a_fresh_entry_without_a_request_and_refetches_after_the_ttl(
    recherche: RechercheStandIn, tmp_path: Path
) -> None:
    clock = Clock(1_800_000_000.0)
    options = fast(cache_dir=tmp_path, ttl_seconds=3600, clock=clock)
    with RechercheEntreprisesClient(recherche.url, options=options) as client:
        first = client.company(DANONE)
        assert client.source.last_from_cache is False
        assert client.source.last_fetched_at == datetime.fromtimestamp(1_800_000_000.0, UTC)
        clock.now += 3599
        again = client.company(DANONE)
        assert again == first and len(recherche.requests) == 1
        assert client.source.last_from_cache is True
        assert client.source.last_fetched_at == datetime.fromtimestamp(1_800_000_000.0, UTC)
    # another process (a new client on the same directory) reads the same entry
    with RechercheEntreprisesClient(recherche.url, options=options) as client:
        assert client.company(DANONE) == first and len(recherche.requests) == 1
        clock.now += 2  # past the TTL
        assert client.company(DANONE) == first
        assert len(recherche.requests) == 2
        assert client.source.last_from_cache is False
        assert client.source.last_fetched_at == datetime.fromtimestamp(1_800_003_601.0, UTC)
    files = list(tmp_path.rglob("*"))
    assert [f.suffix for f in files] == [".json"]  # one entry, no temporary file left behind
    entry = json.loads(files[0].read_text(encoding="utf-8"))
    assert entry["fetched_at"] == datetime.fromtimestamp(1_800_003_601.0, UTC).isoformat()
    assert entry["body"]["results"][0]["siren"] == DANONE


def test_an_expired_entry_is_served_flagged_stale_only_when_asked_during_an_outage(
    recherche: RechercheStandIn, tmp_path: Path
) -> None:
    clock = Clock(1_800_000_000.0)
    with RechercheEntreprisesClient(recherche.url, options=fast(cache_dir=tmp_path, ttl_seconds=60, clock=clock)) as c:
        known = c.company(DANONE)
    clock.now += 3600
    recherche.fail_always(503)
    strict = fast(cache_dir=tmp_path, ttl_seconds=60, clock=clock, max_attempts=1)
    with RechercheEntreprisesClient(recherche.url, options=strict) as client:
        assert _raises(lambda: client.company(DANONE)).kind == "unavailable"
    lenient = fast(cache_dir=tmp_path, ttl_seconds=60, clock=clock, max_attempts=1, serve_stale_on_error=True)
    with RechercheEntreprisesClient(recherche.url, options=lenient) as client:
        assert client.company(DANONE) == known
        info = client.source.last_fetch
    assert info is not None and info.stale and info.from_cache
    assert info.fetched_at == datetime.fromtimestamp(1_800_000_000.0, UTC)


# --- Companies House ---------------------------------------------------------------------------------------------


def test_companies_house_real_payloads(companies_house: CompaniesHouseStandIn) -> None:
    with CompaniesHouseClient(companies_house.url, companies_house.api_key, options=fast()) as client:
        profile = client.profile("6402")
        insolvency = client.insolvency("04271746")
        solvent = client.insolvency(SOLVENT_COMPANY)
        sample_officers = client.officers(SOLVENT_COMPANY)
        unknown = client.profile("99999999")
    assert profile is not None and profile["company_name"] == "RENABLE PHARMA LTD"
    assert profile["accounts"]["next_accounts"]["overdue"] is True
    assert insolvency is not None
    assert [c["type"] for c in insolvency["cases"]] == ["in-administration", "creditors-voluntary-liquidation"]
    assert solvent is None  # 404 = no insolvency case, not an error
    assert [o["name"] for o in sample_officers] == ["ANTLES, Kerri"]  # a page without total_results ends the list
    assert unknown is None
    statuses = {(r.path, r.status) for r in companies_house.requests}
    assert (f"/company/{SOLVENT_COMPANY}/insolvency", 404) in statuses
    assert ("/company/00006402", 200) in statuses


def test_companies_house_officers_are_paged_to_the_end(companies_house: CompaniesHouseStandIn) -> None:
    with CompaniesHouseClient(companies_house.url, companies_house.api_key, options=fast()) as client:
        officers = client.officers(PAGED_COMPANY.lower())
    assert len(officers) == 80 and len({o["name"] for o in officers}) == 80
    pages = companies_house.requests_to(f"/company/{PAGED_COMPANY}/officers")
    assert [(r.param("items_per_page"), r.param("start_index")) for r in pages] == [
        ("35", "0"),
        ("35", "35"),
        ("35", "70"),
    ]


def test_companies_house_without_a_key_fails_before_any_request(companies_house: CompaniesHouseStandIn) -> None:
    with CompaniesHouseClient(companies_house.url, None, options=fast()) as client:
        error = _raises(lambda: client.profile("00006402"))
        assert error.kind == "auth" and "no API key" in str(error)
        with pytest.raises(ValueError):
            CompaniesHouseClient(companies_house.url, "k", options=fast()).profile("12-345")
    assert companies_house.requests == []


@pytest.mark.parametrize("number", ["", "ABCDEFGHI", "123456789", "SC1234567", "12-345"])
def test_companies_house_rejects_malformed_numbers(companies_house: CompaniesHouseStandIn, number: str) -> None:
    with (
        CompaniesHouseClient(companies_house.url, companies_house.api_key, options=fast()) as client,
        pytest.raises(ValueError, match="company number"),
    ):
        client.profile(number)
    assert companies_house.requests == []


def test_the_api_key_never_appears_in_errors_or_cache_files(
    companies_house: CompaniesHouseStandIn, tmp_path: Path
) -> None:
    wrong = "sk_live_" + "S3CRET" * 4
    secrets = (wrong, base64.b64encode(f"{wrong}:".encode()).decode())
    with CompaniesHouseClient(companies_house.url, wrong, options=fast()) as client:
        denied = _raises(lambda: client.profile("00006402"))
        assert (denied.kind, denied.status) == ("auth", 401)
        assert "Invalid Authorization" in str(denied)
        # a server that echoes the credentials back in its error body
        companies_house.fail_always(500, body=f'{{"error": "bad key {wrong} / Basic {secrets[1]}"}}'.encode())
        echoed = _raises(lambda: client.profile("00006402"))
        companies_house.clear_faults()
        texts = [str(denied), repr(denied), str(echoed), repr(client.source), str(echoed.detail)]
    assert echoed.kind == "unavailable" and "bad key ***" in str(echoed)
    assert not [t for t in texts for s in secrets if s in t]

    key = companies_house.api_key
    with CompaniesHouseClient(companies_house.url, key, options=fast(cache_dir=tmp_path)) as client:
        client.profile("00006402")
        client.insolvency("00006402")
        client.insolvency(SOLVENT_COMPANY)  # a cached 404
        client.officers(PAGED_COMPANY)
        asked = len(companies_house.requests)
        assert client.insolvency(SOLVENT_COMPANY) is None and len(companies_house.requests) == asked
    key_forms = (key, base64.b64encode(f"{key}:".encode()).decode())
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 1 + 1 + 1 + 3
    for file in files:
        assert not [s for s in key_forms if s in file.read_text(encoding="utf-8") or s in file.name]


def test_requests_wait_their_turn_on_the_monotonic_clock(companies_house: CompaniesHouseStandIn) -> None:
    """Companies House's default interval (0.5 s) is kept between consecutive requests."""
    options = fast(min_interval_seconds=None)
    with CompaniesHouseClient(companies_house.url, companies_house.api_key, options=options) as client:
        started = time.monotonic()
        client.profile("00006402")
        client.profile(SOLVENT_COMPANY)
        client.profile(PAGED_COMPANY)
    times = [r.at for r in companies_house.requests]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(g >= 0.45 for g in gaps), gaps
    assert time.monotonic() - started >= 1.0
