"""Which practice's queue a correction request goes to.

The organisation the item came from, when the item names one by its ODS code and
HealthSpace knows it (an ``Organisation`` with that code where someone works in
HealthSpace: a queue nobody reads is worse than the patient's own practice); otherwise the
patient's registered practice, which holds the GP record the SCR is made from and answers
for it. The practice is recorded on the request when the patient asks: a later change of
registration does not move a request.

An item names its organisation in a logical reference (``{"identifier": {"system":
<ODS>, "value": "Y00001"}}``) on its author or performer, or in a contained Organization.
References resolved inside an imported bundle (``Organization/<id>``) carry no code and
are not guessed at: those go to the registered practice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Exists, OuterRef

from healthspace.accounts.models import Account
from healthspace.records.importer import ODS_SYSTEM
from healthspace.records.models import Organisation, Patient

# Where a site, not an organisation, is named (Immunization.location): not a queue.
_NOT_ORGANISATIONS = frozenset({"location", "subject", "patient"})


def _ods_codes(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ident = node.get("identifier")
        if (
            isinstance(ident, dict)
            and ident.get("system") == ODS_SYSTEM
            and isinstance(ident.get("value"), str)
            and node.get("type") in (None, "Organization")
        ):
            yield ident["value"]
        if node.get("resourceType") == "Organization":
            for i in node.get("identifier") or []:
                if i.get("system") == ODS_SYSTEM and isinstance(i.get("value"), str):
                    yield i["value"]
        for key, value in node.items():
            if key not in _NOT_ORGANISATIONS:
                yield from _ods_codes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _ods_codes(value)


def item_ods_codes(resource: dict[str, Any]) -> list[str]:
    """ODS codes the item names, in the order they appear, without repeats."""
    return list(dict.fromkeys(_ods_codes(resource)))


def practice_for(*, resource: dict[str, Any], patient: Patient) -> Organisation | None:
    """The organisation whose queue answers for this item, or None when there is none
    (no known organisation and no registered practice with an ODS code)."""
    named = item_ods_codes(resource)
    if named:
        staffed = Account.objects.filter(organisation=OuterRef("pk"), kind=Account.Kind.STAFF)
        known = {
            org.ods_code: org
            for org in Organisation.objects.filter(ods_code__in=named)
            .annotate(staffed=Exists(staffed))
            .filter(staffed=True)
        }
        for code in named:
            if code in known:
                return known[code]
    practice = patient.registered_practice
    if practice is not None and practice.ods_code:
        return practice
    return None
