app_name = "additions"
urlpatterns: list = []
