"""The stages of bench/run.py that need Django, each run in its own process with the
bench environment (production settings, the bench database):

    stages.py build MEASURED SEED   import the measured patients, accounts, references
    stages.py grow PATIENTS         add filler patients by SQL up to PATIENTS
    stages.py prepare DIR           sessions and tokens for this run; the request files

Each prints one ``STAGE {json}`` line last.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import django

PRACTICE = "Y00001"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 HealthSpaceBench"
REF_ITEMS = 25
EXTRA_OBSERVATIONS = 13  # the synthetic record has ~12 items; a GP summary has ~25
PATIENT_EMAIL = "bench-patient@example.test"
CLINICIAN_EMAIL = "bench-clinician@example.nhs.uk"
PRIOR_LOOKS = 300  # events in the patient's own trail before the run (a busy record)
FILLER_SOURCE = "urn:healthspace:bench-filler"


def done(result: dict[str, Any]) -> None:
    print("STAGE " + json.dumps(result, default=str), flush=True)


def measured_bundle(index: int, seed: int) -> dict[str, Any]:
    """A synthetic patient (records.synthetic) registered at the bench practice, with
    extra observations so the summary carries ~25 items, as a GP summary does."""
    from healthspace.records import synthetic

    # even indices are registered at PRACTICE (synthetic alternates two practices)
    bundle = synthetic.patient_bundle(2 * index, seed=seed)
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    template = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    for n in range(EXTRA_OBSERVATIONS):
        obs = json.loads(json.dumps(template))
        obs["id"] = synthetic._id(patient["id"], "bench-obs", n)
        obs["effectiveDateTime"] = f"20{10 + n % 16:02d}-{1 + n % 12:02d}-{1 + n % 27:02d}"
        for c, value in zip(obs["component"], (118 + n, 72 + n % 20), strict=True):
            c["valueQuantity"]["value"] = value
        bundle["entry"].append(
            {
                "fullUrl": f"urn:uuid:{obs['id']}",
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    return bundle


def build(measured: int, seed: int) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from healthspace.access.actors import Actor
    from healthspace.access.roles import Role
    from healthspace.accounts.models import Account, PatientLink
    from healthspace.audit.services import audit_record
    from healthspace.core.clock import now
    from healthspace.records import synthetic
    from healthspace.records.importer import import_entries
    from healthspace.records.models import Patient, ScrItem
    from healthspace.staff.testing import make_staff_user
    from refapp.models import RefPatient, RefResource

    call_command("migrate", interactive=False, verbosity=0)
    call_command("migrate", database="keystore", interactive=False, verbosity=0)
    started = time.perf_counter()
    refs: list[tuple[dict, list[dict]]] = []
    for i in range(measured):
        bundle = measured_bundle(i, seed)
        entries = [(e.get("fullUrl"), e["resource"]) for e in bundle["entry"]]
        report = import_entries(entries, where=f"bench patient {i}", source=synthetic.SOURCE)
        if not report.ok:
            raise SystemExit(f"import failed: {report.errors}")
        resources = [e["resource"] for e in bundle["entry"]]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        clinical = [
            r
            for r in resources
            if r["resourceType"] not in ("Patient", "Organization", "Practitioner")
        ]
        refs.append((patient, (clinical * 3)[:REF_ITEMS]))
    import_seconds = time.perf_counter() - started

    patients = list(Patient.objects.filter(registered_practice__ods_code=PRACTICE))
    if len(patients) != measured:
        raise SystemExit(f"{len(patients)} patients at {PRACTICE}, expected {measured}")
    # the references: the same patients as plain JSONB rows, keyed by the same ids
    by_nhs = {p.nhs_number: p.pk for p in patients}
    for resource, items in refs:
        nhs = resource["identifier"][0]["value"]
        ref = RefPatient.objects.create(id=by_nhs[nhs], resource=resource)
        RefResource.objects.bulk_create(
            RefResource(patient=ref, resource_type=r["resourceType"], resource=r) for r in items
        )

    user_model = get_user_model()
    make_staff_user(
        Role.CLINICIAN, ods=PRACTICE, username=CLINICIAN_EMAIL, first="Bench", last="Clinician"
    )
    patient_user = user_model.objects.create(username=PATIENT_EMAIL, email=PATIENT_EMAIL)
    own = min(patients, key=lambda p: p.nhs_number)
    PatientLink.objects.create(
        user=patient_user,
        patient=own,
        verified_at=now(),
        verified_by="bench set-up",
        method=PatientLink.Method.IN_PERSON,
    )
    Account.objects.create(user=patient_user, kind=Account.Kind.PATIENT, email_confirmed_at=now())
    # a trail to list: staff looks at the patient's record, through the audit service
    staff = Actor("staff", "user:0", roles=frozenset({Role.CLINICIAN}), organisation=PRACTICE)
    with transaction.atomic():
        for n in range(PRIOR_LOOKS):
            audit_record(
                actor=staff,
                action="scr.view",
                patient_id=own.pk,
                outcome="success",
                reason="care-team+permission-given",
                detail={"sections": ["allergies", "medications"], "n": n},
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    done(
        {
            "patients": measured,
            "items": ScrItem.objects.count(),
            "import_seconds": round(import_seconds, 1),
        }
    )


def _columns(cursor, table: str) -> list[tuple[str, str]]:
    cursor.execute(
        "SELECT column_name, data_type, column_default, is_identity "
        "FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
        [table],
    )
    # an identity or serial column is left to its default: the "default" says so
    return [
        (name, kind, "nextval" if identity == "YES" else default)
        for name, kind, default, identity in cursor.fetchall()
    ]


def _copy_rows(
    cursor, table: str, where: str, overrides: dict[str, str], params: list, count: int
) -> None:
    """INSERT ... SELECT the template rows ``count`` times (g = 1..count), each column
    copied unless overridden by an SQL expression (which may use g and t.<column>);
    serial/identity ids are left to their defaults."""
    cols, exprs = [], []
    for name, _kind, default in _columns(cursor, table):
        if name in overrides:
            cols.append(name)
            exprs.append(overrides[name])
        elif default and "nextval" in str(default):
            continue
        else:
            cols.append(name)
            exprs.append(f"t.{name}")
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} "  # noqa: S608 - table and column names from information_schema
        f"FROM {table} t CROSS JOIN generate_series(1, %s) g WHERE {where}",
        [count, *params],
    )


def grow(target: int) -> None:
    """Filler patients by SQL: each a copy of one measured patient's rows (same sizes,
    same ciphertext: they are never opened) under a new id and NHS number, registered at
    another practice when there is one (else the measured one), with a data key row each
    in the key store. They make the tables and
    indexes as large as the population; the measured patients are the imported ones."""
    from django.db import connections

    from healthspace.records.models import Organisation, Patient, ScrItem
    from healthspace.vault.models import DataKey

    current = Patient.objects.count()
    todo = target - current
    if todo <= 0:
        done({"patients": current, "added": 0})
        return
    template = (
        Patient.objects.filter(registered_practice__ods_code=PRACTICE).order_by("nhs_number").last()
    )
    other = Organisation.objects.exclude(ods_code=PRACTICE).exclude(ods_code=None).first()
    patients_table = Patient._meta.db_table
    items_table = ScrItem._meta.db_table
    keys_table = DataKey._meta.db_table
    new_id = "md5('bench-filler-' || g::text)::uuid"
    batch = 100_000
    started = time.perf_counter()
    # a large fill runs without the tables' indexes and keys, rebuilt by sorting once at
    # the end: inserting 25 rows per patient into B-trees keyed by random UUIDs is random
    # I/O once the indexes outgrow the page cache (500,000 patients took 42 minutes so)
    rebuild: dict[str, list[str]] = {}
    if todo >= INDEXLESS_FILL:
        for alias, tables in (
            ("default", [patients_table, items_table]),
            ("keystore", [keys_table]),
        ):
            with connections[alias].cursor() as cursor:
                rebuild[alias] = _drop_indexes(cursor, tables)
    for start in range(0, todo, batch):
        n = min(batch, todo - start)
        g = f"(g + {start})"
        pid = new_id.replace("g::text", f"{g}::text")
        with connections["default"].cursor() as cursor:
            cursor.execute("BEGIN")
            if other is not None:
                _filler_patients(cursor, patients_table, pid, g, template.pk, other.pk, n)
            else:
                _copy_rows(
                    cursor,
                    patients_table,
                    "t.id = %s",
                    {
                        "id": pid,
                        "nhs_number": f"'8' || lpad({g}::text, 9, '0')",
                        "source_system": f"'{FILLER_SOURCE}'",
                    },
                    [template.pk],
                    n,
                )
            item_cols = {c for c, _, _ in _columns(cursor, items_table)}
            item_over = {"patient_id": pid, "source_system": f"'{FILLER_SOURCE}'"}
            if "id" in item_cols and _is_uuid(cursor, items_table, "id"):
                item_over["id"] = f"md5('bench-item-' || {g}::text || '-' || t.id::text)::uuid"
            _copy_rows(cursor, items_table, "t.patient_id = %s", item_over, [template.pk], n)
            cursor.execute("COMMIT")
        with connections["keystore"].cursor() as cursor:
            cursor.execute("BEGIN")
            _copy_rows(
                cursor, keys_table, "t.patient_id = %s", {"patient_id": pid}, [template.pk], n
            )
            cursor.execute("COMMIT")
    filled = time.perf_counter()
    for alias, statements in rebuild.items():
        with connections[alias].cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            for statement in statements:
                cursor.execute(statement)
    for alias in ("default", "keystore"):
        with connections[alias].cursor() as cursor:
            cursor.execute("ANALYZE")
    done(
        {
            "patients": Patient.objects.count(),
            "added": todo,
            "items": ScrItem.objects.count(),
            "seconds": round(time.perf_counter() - started, 1),
            "index_rebuild_seconds": round(time.perf_counter() - filled, 1) if rebuild else None,
        }
    )


# patients; below this the indexes are kept while filling
INDEXLESS_FILL = int(os.environ.get("BENCH_INDEXLESS_FILL", "50000"))


def _drop_indexes(cursor, tables: list[str]) -> list[str]:
    """Drop the tables' indexes, their keys and the foreign keys that point at them;
    return the statements that put every one back (indexes, then primary and unique
    keys, then foreign keys), each as PostgreSQL itself describes it."""
    cursor.execute(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype "
        "FROM pg_constraint c "
        "WHERE c.contype IN ('p', 'u', 'f', 'x') AND c.conparentid = 0 "
        "AND (c.conrelid::regclass::text = ANY(%s) OR c.confrelid::regclass::text = ANY(%s)) "
        "ORDER BY c.contype = 'f', c.conname",
        [tables, tables],
    )
    constraints = cursor.fetchall()
    named = {name for _table, name, _def, _type in constraints}
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = ANY(%s) ORDER BY indexname",
        [tables],
    )
    indexes = [(name, definition) for name, definition in cursor.fetchall() if name not in named]
    cursor.execute("BEGIN")
    for table, name, _def, _type in reversed(constraints):  # foreign keys first
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    cursor.execute("COMMIT")
    return [definition for _name, definition in indexes] + [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        for table, name, definition, _type in constraints
    ]


def _is_uuid(cursor, table: str, column: str) -> bool:
    return any(name == column and kind == "uuid" for name, kind, _ in _columns(cursor, table))


def _filler_patients(cursor, table, pid, g, template_id, practice_id, n) -> None:
    cols, exprs = [], []
    over = {
        "id": pid,
        "nhs_number": f"'8' || lpad({g}::text, 9, '0')",
        "registered_practice_id": "%s",
        "source_system": f"'{FILLER_SOURCE}'",
    }
    for name, _kind, default in _columns(cursor, table):
        if default and "nextval" in str(default):
            continue
        cols.append(name)
        exprs.append(over.get(name, f"t.{name}"))
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} "  # noqa: S608 - table and column names from information_schema
        f"FROM {table} t CROSS JOIN generate_series(1, %s) g WHERE t.id = %s",
        [practice_id, n, template_id],
    )


def prepare(out_dir: str, static: str = "static") -> None:
    """Sessions (a clinician's, as after a passkey login; the patient's), the permission
    answers of this session, a system client's token; one request file per endpoint."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from healthspace.access.context import Permission
    from healthspace.accounts.actors import actor_for_user
    from healthspace.accounts.sessions.services import key_hash
    from healthspace.accounts.sessions.testing import signed_in_client
    from healthspace.audit.models import AuditEvent
    from healthspace.audit.selectors import access_history_for_patient
    from healthspace.fhir_api import ids as fhir_ids
    from healthspace.records.models import Patient, ScrItem
    from healthspace.smart import testing as smart_testing
    from healthspace.staff import selectors, services
    from healthspace.staff.views import FOUND_IN_SESSION, FOUND_MAX
    from refapp.models import RefPatient

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # production serves hashed static files from a manifest (collectstatic, as deployed)
    if static == "static":
        call_command("collectstatic", interactive=False, verbosity=0)
    users = get_user_model().objects
    clinician, patient_user = users.get(username=CLINICIAN_EMAIL), users.get(username=PATIENT_EMAIL)
    pids = sorted(RefPatient.objects.values_list("id", flat=True))
    proto = "X-Forwarded-Proto: https"
    ua = f"User-Agent: {USER_AGENT}"
    cookie_name = settings.SESSION_COOKIE_NAME

    scr_lines = []
    mw_lines = []  # R4 through the application's middleware, with the same sessions
    actor = actor_for_user(clinician)
    for start in range(0, len(pids), FOUND_MAX):
        group = pids[start : start + FOUND_MAX]
        client = signed_in_client(clinician, user_agent=USER_AGENT, second_factor="passkey")
        session = client.session
        session[FOUND_IN_SESSION] = [str(p) for p in group]
        session.save()
        session_hash = key_hash(session.session_key)
        for pid in group:
            context = selectors.access_context_for(
                actor=actor, user_id=clinician.pk, session_key_hash=session_hash, patient_id=pid
            )
            services.permission_record(
                actor=actor,
                user_id=clinician.pk,
                session_key_hash=session_hash,
                patient_id=pid,
                context=context,
                answer=Permission.GIVEN,
            )
            cookie = f"Cookie: {cookie_name}={session.session_key}"
            scr_lines.append(f"/staff/patient/{pid}/scr/\t{cookie}\t{proto}\t{ua}")
            mw_lines.append(f"/bench/mw/r4/{pid}\t{cookie}\t{proto}\t{ua}")

    patient_client = signed_in_client(patient_user, user_agent=USER_AGENT, second_factor="totp")
    patient_cookie = f"Cookie: {cookie_name}={patient_client.session.session_key}"
    feed, _key = smart_testing.system_client(ods=PRACTICE, scopes="system/*.rs")
    token = smart_testing.issue_token(feed, scope="system/*.rs", seconds=6 * 3600)
    bearer = f"Authorization: Bearer {token}\tAccept: application/fhir+json\t{proto}"
    own = patient_user.patient_link.patient_id
    app_token = smart_testing.issue_token(
        smart_testing.patient_app("Bench app"),
        scope="launch/patient patient/*.rs openid fhirUser",
        user=patient_user,
        seconds=6 * 3600,
    )
    own_bearer = f"Authorization: Bearer {app_token}\tAccept: application/fhir+json\t{proto}"
    items = list(
        ScrItem.objects.filter(patient_id__in=pids, resource_type="MedicationRequest")
        .order_by("patient_id", "pk")
        .values_list("resource_type", "pk")
    )
    read_lines = [f"/fhir/R4/{rtype}/{fhir_ids.encode(pk)}\t{bearer}" for rtype, pk in items]
    files = {
        "R2": [f"/bench/ref/r2/{p}" for p in pids],
        "R3": [f"/bench/ref/r3/{p}" for p in pids],
        "R4": [f"/bench/ref/r4/{p}" for p in pids],
        "R4mw": mw_lines,
        "scr_html": scr_lines,
        "fhir_summary": [f"/fhir/R4/Patient/{p}/$summary\t{bearer}" for p in pids],
        "fhir_read": read_lines,
        "who_looked": [f"/record/access/who-has-looked/\t{patient_cookie}\t{proto}\t{ua}"],
        # the patient's own app: a GP system's token reaches only the core sections
        "export": [f"/fhir/R4/Patient/{own}/$everything\t{own_bearer}"],
    }
    paths = {}
    for name, lines in files.items():
        path = out / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        paths[name] = str(path)

    explain: list[str] = []
    if connection.vendor == "postgresql":
        sent: list[tuple[str, Any]] = []  # the statements with their parameters, as sent

        def grab(execute, sql, params, many, context):
            sent.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(grab):
            access_history_for_patient(patient_id=own, limit=51, before=None)
        table = AuditEvent._meta.db_table
        found = next(((q, p) for q, p in sent if table in q), None)
        if found:
            with connection.cursor() as cursor:
                query = cursor.cursor.mogrify(*found)  # the values in the text, as a literal
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) {query}")
                explain = [row[0] for row in cursor.fetchall()]
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0].split(" on ")[0]
    else:
        version = connection.vendor
    count = Patient.objects.count()
    items_total = ScrItem.objects.filter(patient_id__in=pids).count()
    done(
        {
            "files": paths,
            "patients": count,
            "items": ScrItem.objects.count(),
            "items_per_patient": items_total / len(pids),
            "audit_events": AuditEvent.objects.count(),
            "explain": explain,
            "postgres": version,
            "expires": str(timedelta(hours=6)),
            "own_patient": str(own),
            "uuid": str(uuid.uuid4()),
        }
    )


def _getter():
    """GET one request line (path, then tab-separated headers; a Cookie header is set on
    the client) through the full WSGI handler, every middleware, in this process."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")

    def get(line: str):
        path, *headers = line.split("\t")
        extra = {}
        for header in headers:
            name, value = header.split(": ", 1)
            if name == "Cookie":
                cookie_name, cookie_value = value.split("=", 1)
                client.cookies[cookie_name] = cookie_value
                continue
            extra["HTTP_" + name.upper().replace("-", "_")] = value
        response = client.get(path, **extra)
        assert 200 <= response.status_code < 300, (path, response.status_code)
        if response.streaming:
            b"".join(response.streaming_content)
        return response

    return get


def requests(requests_file: str, count: str) -> None:
    """Five warming requests, then ``count`` more of one request file, in this process and
    nothing else: what ``bench/run.py --instructions`` runs under callgrind, twice, to
    count the instructions one request costs (the difference over the extra requests)."""
    lines = Path(requests_file).read_text().splitlines()
    get = _getter()
    for line in lines[:5]:
        get(line)
    for i in range(int(count)):
        get(lines[i % len(lines)])
    done({"requests": int(count)})


def profile(requests_file: str, count: str, sort: str = "cumulative") -> None:
    """cProfile of ``count`` requests of one request file through the full WSGI handler
    (all middleware) in this process, with the queries of the last one."""
    import cProfile
    import io
    import pstats

    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext

    lines = Path(requests_file).read_text().splitlines()
    get = _getter()

    for line in lines[:5]:
        get(line)  # warm: imports, templates, connections
    profiler = cProfile.Profile(time.thread_time)  # CPU, not waits on the database
    n = int(count)
    split = {"render": 0.0, "db": 0.0}  # CPU seconds inside template rendering, inside queries

    def timed(key, call, *args, **kwargs):
        started = time.thread_time()
        try:
            return call(*args, **kwargs)
        finally:
            split[key] += time.thread_time() - started

    from django.template.backends import jinja2 as jinja_backend

    plain_render = jinja_backend.Template.render

    def render(self, *args, **kwargs):
        return timed("render", plain_render, self, *args, **kwargs)

    def db_wrapper(execute, sql, params, many, context):
        return timed("db", execute, sql, params, many, context)

    jinja_backend.Template.render = render
    gc_time = {0: 0.0, 1: 0.0, 2: 0.0}
    gc_runs = {0: 0, 1: 0, 2: 0}
    gc_longest = [0.0]
    gc_started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
            return
        took = time.perf_counter() - gc_started[0]
        gc_time[info["generation"]] += took
        gc_runs[info["generation"]] += 1
        gc_longest[0] = max(gc_longest[0], took)

    gc.callbacks.append(on_gc)
    cpu_started = time.process_time()
    started = time.perf_counter()
    with connection.execute_wrapper(db_wrapper):
        for i in range(n):  # unprofiled: what a request costs
            get(lines[i % len(lines)])
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    gc.callbacks.remove(on_gc)
    jinja_backend.Template.render = plain_render
    profiler.enable()
    for i in range(n):
        get(lines[i % len(lines)])
    profiler.disable()
    with (
        CaptureQueriesContext(connection) as main_q,
        CaptureQueriesContext(connections["keystore"]) as key_q,
    ):
        get(lines[0])
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(
        int(os.environ.get("BENCH_PROFILE_LINES", "45"))
    )
    print(out.getvalue())
    for q in [*main_q.captured_queries, *key_q.captured_queries]:
        print("QUERY", q["sql"][:300])
    done(
        {
            "ms_per_request": round(elapsed * 1000 / n, 2),
            "cpu_ms_per_request": round(cpu * 1000 / n, 2),
            # CPU of this thread inside the page's template and inside the main database's
            # queries (the driver's and the ORM's execute, not the SQL compiler)
            "render_cpu_ms": round(split["render"] * 1000 / n, 2),
            "query_cpu_ms": round(split["db"] * 1000 / n, 2),
            "queries": len(main_q.captured_queries),
            "keystore_queries": len(key_q.captured_queries),
            # the garbage collector's share (pauses of every generation, and the longest)
            "gc_ms_per_request": round(sum(gc_time.values()) * 1000 / n, 3),
            "gc_collections": gc_runs,
            "gc_longest_ms": round(gc_longest[0] * 1000, 2),
            "gc_frozen_objects": gc.get_freeze_count(),
        }
    )


def main() -> None:
    django.setup()
    stage, *args = sys.argv[1:]
    if stage == "build":
        build(int(args[0]), int(args[1]))
    elif stage == "grow":
        grow(int(args[0]))
    elif stage == "prepare":
        prepare(args[0])
    elif stage == "profile":
        profile(*args)
    elif stage == "requests":
        requests(*args)
    else:
        raise SystemExit(f"unknown stage {stage}")


if __name__ == "__main__":
    main()
