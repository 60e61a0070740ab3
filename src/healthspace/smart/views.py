"""OAuth 2.0 / SMART on FHIR pages and endpoints.

- ``/oauth/authorize/``: the patient's consent screen (NHS.UK frontend), after their
  normal login with a second factor; approving creates the authorization code.
- ``/oauth/token/``: django-oauth-toolkit's token endpoint (authorization code + PKCE,
  refresh, client credentials with a JWT assertion), throttled per client.
- ``/account/apps/``: the apps connected to the patient's record, to disconnect.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.csp import CSP
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.models import get_application_model
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.views import RevokeTokenView, TokenView

from healthspace.access.endpoints import endpoint
from healthspace.access.policy import Action
from healthspace.accounts.actors import actor_for_request
from healthspace.accounts.factors.guards import scr_allowed_for_session, second_factor_url
from healthspace.audit.services import access_checked
from healthspace.ops.lifecycle import allowed_when_read_only
from healthspace.smart import scopes as smart_scopes
from healthspace.smart import services, throttle
from healthspace.smart.models import AppRegistration
from healthspace.smart.selectors import connected_apps
from healthspace.smart.validator import fhir_base

PENDING_QUERY = "smart:authorize-query"  # the app's request, kept across login
PENDING = "smart:pending"  # validated requests waiting for the patient's answer
MAX_QUERY = 4096
CREDENTIAL_KEYS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "claims",
)


def _error_page(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return render(request, "smart/error.html", {"message": message}, status=status)


def _allow_form_redirect_to(response: HttpResponse, uri: str) -> HttpResponse:
    """The consent form posts here and is redirected to the app: browsers check the
    form page's CSP form-action on that redirect too, so it must name the app's redirect
    URI's origin (and nothing else besides 'self')."""
    target = urlsplit(uri)
    origin = f"{target.scheme}://{target.netloc}" if target.netloc else f"{target.scheme}:"
    response._csp_config = {**settings.SECURE_CSP, "form-action": [CSP.SELF, origin]}  # type: ignore[attr-defined]
    return response


def _redirect_to_app(uri: str, application) -> HttpResponse:
    return _allow_form_redirect_to(
        OAuth2ResponseRedirect(uri, application.get_allowed_schemes()), uri
    )


def _oauth_error(error: OAuthToolkitError, application) -> HttpResponse | None:
    """Redirect a (non-fatal) OAuth error to the app's validated redirect URI."""
    oauthlib_error = error.oauthlib_error
    uri = getattr(oauthlib_error, "redirect_uri", None)
    if isinstance(error, FatalClientError) or not uri or application is None:
        return None
    return _redirect_to_app(oauthlib_error.in_uri(uri), application)


@endpoint(no_patient_data=True)
@require_GET
def authorize_resume(request: HttpRequest) -> HttpResponse:
    """After login: back to the app's request, as it came."""
    query = request.session.pop(PENDING_QUERY, "")
    if not query:
        return _error_page(
            request, "This request to connect an app has expired. Go back to the app and try again."
        )
    return redirect(f"{reverse('oauth2_provider:authorize')}?{query}")


@allowed_when_read_only
@endpoint(Action.APP_AUTHORISE)
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated or not scr_allowed_for_session(request):
        if request.method != "GET":
            return _error_page(request, "Log in again, then go back to the app and try again.", 403)
        request.session[PENDING_QUERY] = request.GET.urlencode()[:MAX_QUERY]
        back = reverse("oauth2_provider:authorize-resume")
        if not request.user.is_authenticated:
            return redirect(f"{reverse('web:login')}?{urlencode({'next': back})}")
        return redirect(f"{second_factor_url()}?{urlencode({'next': back})}")
    actor = actor_for_request(request)
    if actor.kind != "patient" or actor.patient_id is None:
        return render(request, "smart/no_record.html", {}, status=403)
    if request.method == "POST":
        return _answer(request, actor)
    return _consent_page(request)


def _consent_page(request: HttpRequest) -> HttpResponse:
    core = get_oauthlib_core()
    application = None
    client_id = request.GET.get("client_id", "")
    if client_id:
        application = get_application_model().objects.filter(client_id=client_id).first()
    try:
        scopes, credentials = core.validate_authorization_request(request)
    except OAuthToolkitError as error:
        redirected = _oauth_error(error, application)
        if redirected is not None:
            return redirected
        return _error_page(
            request,
            "This app's request to connect is not valid. Contact the app's publisher.",
        )
    registration = getattr(application, "smart", None)
    if registration is None or registration.kind != AppRegistration.Kind.PATIENT_APP:
        return _error_page(request, "This app cannot connect to your record.")
    if credentials.get("code_challenge_method") != "S256":
        # SMART: PKCE with S256 only (a "plain" challenge protects nothing)
        query = urlencode(
            {
                "error": "invalid_request",
                "error_description": "PKCE with code_challenge_method=S256 is required",
                "state": credentials.get("state") or "",
            }
        )
        joiner = "&" if "?" in credentials["redirect_uri"] else "?"
        return _redirect_to_app(f"{credentials['redirect_uri']}{joiner}{query}", application)
    if (request.GET.get("aud") or "").rstrip("/") != fhir_base():
        # SMART: the app names the FHIR server it wants a token for; a token for another
        # server must never be issued here
        return _error_page(
            request,
            "This app asked to connect to a different service. Contact the app's publisher.",
        )
    key = secrets.token_urlsafe(16)
    pending = request.session.get(PENDING, {})
    pending = dict(list(pending.items())[-4:])  # a few tabs at most
    pending[key] = {
        "credentials": {k: credentials[k] for k in CREDENTIAL_KEYS if credentials.get(k)},
        "scopes": list(scopes),
    }
    request.session[PENDING] = pending
    page = render(
        request,
        "smart/authorize.html",
        {
            "application": application,
            "registration": registration,
            "pending": key,
            "can_see": smart_scopes.describe(list(scopes)),
            "redirect_host": urlsplit(credentials["redirect_uri"]).netloc
            or credentials["redirect_uri"],
        },
    )
    return _allow_form_redirect_to(page, credentials["redirect_uri"])


def _answer(request: HttpRequest, actor) -> HttpResponse:
    key = request.POST.get("pending", "")
    pending = request.session.get(PENDING, {})
    entry = pending.pop(key, None)
    request.session[PENDING] = pending
    if entry is None:
        return _error_page(
            request, "This request to connect an app has expired. Go back to the app and try again."
        )
    credentials, scopes = entry["credentials"], entry["scopes"]
    application = get_application_model().objects.filter(client_id=credentials["client_id"]).first()
    registration = getattr(application, "smart", None)
    if application is None or registration is None or not registration.active:
        return _error_page(request, "This app cannot connect to your record.")
    allow = request.POST.get("answer") == "allow"
    core = get_oauthlib_core()
    try:
        if not allow:
            core.create_authorization_response(request, list(scopes), credentials, False)
            return _error_page(request, "The app was not connected.")  # not reached
        decision = access_checked(
            actor=actor, action=Action.APP_AUTHORISE, patient_id=actor.patient_id
        )
        if not decision.allowed:
            return _error_page(request, "This app cannot connect to your record.", 403)
        with transaction.atomic():
            uri, _, _, _ = core.create_authorization_response(
                request, list(scopes), credentials, True
            )
            services.app_authorised_record(
                actor=actor, client_id=application.client_id, scopes=scopes
            )
    except OAuthToolkitError as error:
        redirected = _oauth_error(error, application)
        if redirected is not None:
            return redirected
        return _error_page(request, "This app's request to connect is not valid.")
    return _redirect_to_app(uri, application)


@endpoint(no_patient_data=True)
@require_GET
def apps(request: HttpRequest) -> HttpResponse:
    """The apps connected to the signed-in person's own record (no id in the URL)."""
    if not request.user.is_authenticated:
        return redirect(f"{reverse('web:login')}?{urlencode({'next': request.path})}")
    if not scr_allowed_for_session(request):
        return redirect(f"{second_factor_url()}?{urlencode({'next': request.path})}")
    return render(
        request,
        "smart/apps.html",
        {
            "apps": connected_apps(user=request.user),
            "disconnected": request.GET.get("disconnected") == "1",
        },
    )


@allowed_when_read_only
@endpoint(Action.APP_REVOKE)
@require_POST
def disconnect(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated or not scr_allowed_for_session(request):
        return redirect(reverse("web:login"))
    actor = actor_for_request(request)
    if actor.kind != "patient" or actor.patient_id is None:
        return render(request, "smart/no_record.html", {}, status=403)
    # the app is named in the form; only this user's tokens for it are touched
    client_id = request.POST.get("client_id", "")[:255]
    services.app_disconnect(actor=actor, user=request.user, client_id=client_id)
    return redirect(f"{reverse('smart:apps')}?disconnected=1")


_token_view = TokenView.as_view()


@allowed_when_read_only
@endpoint(no_patient_data=True)
@csrf_exempt
@require_POST
def token(request: HttpRequest) -> HttpResponse:
    key = request.POST.get("client_id") or request.META.get("REMOTE_ADDR", "")
    retry = throttle.hit(f"token:{key}", limit=settings.HEALTHSPACE_OAUTH_TOKEN_RATE_LIMIT)
    if retry:
        response = JsonResponse(
            {"error": "slow_down", "error_description": "Too many token requests."}, status=429
        )
        response["Retry-After"] = str(retry)
        return response
    response = _token_view(request)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


revoke = allowed_when_read_only(
    endpoint(no_patient_data=True)(csrf_exempt(RevokeTokenView.as_view()))
)
