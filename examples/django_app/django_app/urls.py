"""The example's URLs."""

from django.urls import path

from django_app import views

urlpatterns = [
    path("orders/", views.place_order),
    path("orders/<int:order_id>/", views.show_order),
    path("exports/orders/", views.export_orders),
    path("files/exports/<str:token>", views.download),
]
