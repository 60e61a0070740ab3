from django.urls import path

from healthspace.portability import views

app_name = "portability"
urlpatterns = [
    path("your-data/", views.your_data, name="your-data"),
    path("your-data/deletion-receipt.json", views.own_deletion_receipt, name="deletion-receipt"),
    path("your-data/<uuid:download_id>/", views.download, name="download"),
    path("your-data/<uuid:download_id>/file/", views.download_file, name="download-file"),
    path("close/", views.close, name="close"),
    path("closed/", views.closed, name="closed"),
    path("closed/receipt.json", views.closed_receipt, name="closed-receipt"),
]
