import os

from django.core.wsgi import get_wsgi_application

from healthspace.web.unread_body import CloseAfterUnreadBody

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthspace.config.settings")

# Django's application, saying "Connection: close" when it answers without reading the
# request's body (healthspace.web.unread_body)
application = CloseAfterUnreadBody(get_wsgi_application())
