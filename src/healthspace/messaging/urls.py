from django.urls import path

from healthspace.messaging import views

app_name = "messaging"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("new/", views.new, name="new"),
    path("<uuid:thread_id>/", views.thread, name="thread"),
    path("<uuid:thread_id>/reply/", views.reply, name="reply"),
    path("<uuid:thread_id>/close/", views.close, name="close"),
    path("<uuid:thread_id>/reopen/", views.reopen, name="reopen"),
    path(
        "<uuid:thread_id>/attachments/<uuid:attachment_id>/",
        views.attachment,
        name="attachment",
    ),
]
