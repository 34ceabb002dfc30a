"""Rules as a file over HTTP: anyone who reads the dashboard downloads the rules; stewards import a file.
`hygiene.rulebook.transfer` does the work. Whatever is uploaded, the answer is a message, never an error page."""
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from hygiene.dashboard.views import safe_next
from hygiene.roles import steward_required
from hygiene.rulebook import transfer

CONTENT_TYPES = {"yaml": "application/yaml; charset=utf-8", "json": "application/json; charset=utf-8"}
MAX_MESSAGES = 20


@require_GET
def export_rules(request, fmt):
    if fmt not in transfer.FORMATS:
        raise Http404("Rules are exported as yaml or json.")
    response = HttpResponse(transfer.dump(transfer.export_rules(), fmt), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = (f'attachment; filename="catalog-hygiene-rules-'
                                       f'{timezone.localdate():%Y%m%d}.{fmt}"')
    return response


@require_POST
@steward_required
def import_rules(request):
    rules_page = reverse("rulebook:rules")
    back = safe_next(request, rules_page)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Nothing was imported: choose a rules file (YAML or JSON, as an export writes it).")
        return HttpResponseRedirect(back)
    try:
        if upload.size > transfer.MAX_BYTES:
            raise transfer.RulesFileError(f"The file is larger than {transfer.MAX_BYTES // 1024 // 1024} MB; "
                                          "a rules export is a few KB.")
        result = transfer.import_rules(transfer.parse(upload.read(transfer.MAX_BYTES + 1)), request.user)
    except transfer.RulesFileError as exc:
        messages.error(request, f"Nothing was imported. {exc}")
        return HttpResponseRedirect(back)
    if not result.ok:
        messages.error(request, result.summary())
        for refusal in result.refused[:MAX_MESSAGES]:
            messages.error(request, str(refusal))
        if len(result.refused) > MAX_MESSAGES:
            messages.error(request, f"…and {len(result.refused) - MAX_MESSAGES} more problems.")
        return HttpResponseRedirect(back)
    messages.success(request, result.summary())
    if result.untouched:
        messages.info(request, result.untouched_note())
    for outcome in result.created:
        if outcome.note:
            messages.info(request, f"“{outcome.name}”: {outcome.note}.")
    return HttpResponseRedirect(rules_page)
