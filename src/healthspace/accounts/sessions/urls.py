from django.urls import path

from healthspace.accounts.sessions import views

urlpatterns = [
    path("", views.account_home, name="home"),
    path("security/someone-has-seen-my-record/", views.compromised, name="compromised"),
    path("sessions/", views.session_list, name="sessions"),
    path("sessions/<int:session_id>/end/", views.session_end, name="session-end"),
    path("sessions/end-others/", views.sessions_end_others, name="sessions-end-others"),
    path("sessions/logout-everywhere/", views.logout_everywhere, name="logout-everywhere"),
    path("unlock/<str:token>/", views.unlock, name="unlock"),
    path("keepalive/", views.keepalive, name="keepalive"),
]
