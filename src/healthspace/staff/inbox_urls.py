from django.urls import path

from healthspace.staff import inbox_views as views

app_name = "staff-inbox"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<uuid:thread_id>/", views.thread, name="thread"),
    path("<uuid:thread_id>/reply/", views.reply, name="reply"),
    path("<uuid:thread_id>/assign/", views.assign, name="assign"),
    path("<uuid:thread_id>/close/", views.close, name="close"),
    path("<uuid:thread_id>/reopen/", views.reopen, name="reopen"),
    path(
        "<uuid:thread_id>/attachments/<uuid:attachment_id>/",
        views.attachment,
        name="attachment",
    ),
]
