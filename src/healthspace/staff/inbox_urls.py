app_name = "staff-inbox"
urlpatterns: list = []
