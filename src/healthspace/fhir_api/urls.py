"""FHIR R4 API routes, mounted at /fhir/R4/. Specific routes first; ``[type]`` routes
answer 404 (not supported) for types the server does not serve."""

from django.urls import path, re_path

from healthspace.fhir_api import views

app_name = "fhir"
urlpatterns = [
    path("", views.transaction, name="transaction"),
    path("metadata", views.metadata, name="metadata"),
    path(".well-known/smart-configuration", views.smart_configuration, name="smart-configuration"),
    path("openapi.json", views.openapi_json, name="openapi"),
    path("$export", views.export_system, name="export"),
    path("$export-poll/<str:job_id>", views.export_status, name="export-status"),
    path("$export-file/<str:job_id>/<str:name>", views.export_file, name="export-file"),
    path("Patient/$export", views.export_patients, name="export-patients"),
    path("Group/<str:group_id>/$export", views.export_group, name="export-group"),
    path("Patient/<str:fhir_id>/$everything", views.patient_everything, name="everything"),
    path("Patient/<str:fhir_id>/$summary", views.patient_summary, name="summary"),
    path("<str:rtype>/_search", views.type_search_post, name="search-post"),
    path("<str:rtype>/<str:fhir_id>/_history/<str:vid>", views.instance_version, name="vread"),
    path("<str:rtype>/<str:fhir_id>/_history", views.instance_history, name="history"),
    path("<str:rtype>/<str:fhir_id>", views.instance, name="instance"),
    path("<str:rtype>", views.type_root, name="type"),
    # anything else under the base: an OperationOutcome, never an HTML page
    re_path(r"^.*$", views.no_route, name="no-route"),
]
