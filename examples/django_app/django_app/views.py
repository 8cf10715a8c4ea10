"""Views: place an order (its job enqueued after commit), follow it, export, download by token."""

from __future__ import annotations

import json

from django.db import transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from bullpen import SyncJob
from django_app.jobs import jobs
from django_app.models import Order


@csrf_exempt  # a JSON API for the example; a form view keeps Django's CSRF check
@require_POST
def place_order(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body)
    queued: list[SyncJob] = []
    try:
        with transaction.atomic():
            order = Order.objects.create(customer=body["customer"], total=int(body["total"]))
            # The worker must find the row: enqueue once the transaction has committed.
            transaction.on_commit(lambda: queued.append(
                jobs.enqueue("orders.confirm", {"order_id": order.pk})))
            if order.total <= 0:  # a later step fails: no order, and no job either
                raise ValueError("total must be positive")
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)  # rolled back: no row, no job
    return JsonResponse({"order_id": order.pk, "job_id": queued[0].id}, status=201)


def show_order(request: HttpRequest, order_id: int) -> JsonResponse:
    order = Order.objects.get(pk=order_id)
    job_id = request.GET.get("job")
    info = jobs.get_job(job_id) if job_id else None
    return JsonResponse({"id": order.pk, "status": order.status,
                         "job_state": info.state if info else None,
                         "job_result": info.result if info else None})


@csrf_exempt
@require_POST
def export_orders(request: HttpRequest) -> JsonResponse:
    rows = Order.objects.order_by("pk").values("id", "customer", "total").iterator()
    export = jobs.exports.create(rows, filename="orders.csv", owner="django-demo")
    base_url = request.build_absolute_uri("/files")
    return JsonResponse({"url": jobs.exports.download_url(export, base_url=base_url)})


@require_http_methods(["GET", "HEAD"])
def download(request: HttpRequest, token: str) -> HttpResponseBase:
    answer = jobs.exports.serve(token, range_header=request.headers.get("Range"),
                                if_range=request.headers.get("If-Range"),
                                head=request.method == "HEAD")
    response: HttpResponseBase
    if answer.file is None:
        response = HttpResponse(answer.message, status=answer.status)
    else:
        response = StreamingHttpResponse(answer.chunks(), status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response
