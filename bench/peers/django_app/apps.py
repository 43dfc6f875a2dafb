from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "peers.django_app"
    label = "bench"
    default_auto_field = "django.db.models.AutoField"
