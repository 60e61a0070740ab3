app_name = "staff-corrections"
urlpatterns: list = []
