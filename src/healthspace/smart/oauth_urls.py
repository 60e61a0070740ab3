"""OAuth 2.0 endpoints under /oauth/. The namespace is django-oauth-toolkit's, whose
discovery views name these routes."""

from django.urls import path
from oauth2_provider import views as dot

from healthspace.access.endpoints import endpoint
from healthspace.smart import views

app_name = "oauth2_provider"
urlpatterns = [
    path("authorize/", views.authorize, name="authorize"),
    path("authorize/resume/", views.authorize_resume, name="authorize-resume"),
    path("token/", views.token, name="token"),
    path("revoke/", views.revoke, name="revoke-token"),
    # OpenID Connect (fhirUser in the ID token)
    path(
        ".well-known/openid-configuration",
        endpoint(no_patient_data=True)(dot.ConnectDiscoveryInfoView.as_view()),
        name="oidc-connect-discovery-info",
    ),
    path(
        ".well-known/jwks.json",
        endpoint(no_patient_data=True)(dot.JwksInfoView.as_view()),
        name="jwks-info",
    ),
    # the user's id (sub) and fhirUser (Patient/<id>): who they are, nothing from the record
    path(
        "userinfo/",
        endpoint(no_patient_data=True)(dot.UserInfoView.as_view()),
        name="user-info",
    ),
]
