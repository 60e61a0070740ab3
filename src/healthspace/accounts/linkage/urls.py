from django.urls import path

from healthspace.accounts.linkage import views

urlpatterns = [
    path("verify/", views.verify, name="linkage-verify"),
    path("staff/linkage/", views.staff_linkage, name="staff-linkage"),
    path("staff/linkage/issue/", views.staff_linkage_issue, name="staff-linkage-issue"),
    path("staff/linkage/in-person/", views.staff_linkage_in_person, name="staff-linkage-in-person"),
    # The one-time link; the token moves into the session at once.
    path("staff/setup/<str:token>/", views.staff_setup_link, name="staff-setup-link"),
    path("staff/setup/", views.staff_setup, name="staff-setup"),
]
