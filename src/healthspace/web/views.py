from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from healthspace.accounts.actors import actor_for_user
from healthspace.core.errors import NotFound
from healthspace.records.selectors import scr_for


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/home.html", {})


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("web:home")


@login_required
def record(request: HttpRequest) -> HttpResponse:
    actor = actor_for_user(request.user)
    try:
        scr = scr_for(actor=actor, patient_id=actor.patient_id)
    except NotFound:
        return render(request, "web/no_record.html", {}, status=404)
    return render(request, "web/record.html", {"scr": scr})
