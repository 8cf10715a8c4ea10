"""The example's one model."""

from django.db import models


class Order(models.Model):
    customer = models.CharField(max_length=100)
    total = models.IntegerField()
    status = models.CharField(max_length=20, default="new")

    class Meta:
        app_label = "django_app"
