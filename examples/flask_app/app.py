"""The Flask app: orders (confirmed by a worker after commit), an export, downloads by token.

Run it next to a worker, from examples/:
    BULLPEN_APP=flask_app flask --app flask_app.app run
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, request
from sqlalchemy import select

from flask_app.db import Base, Order, SessionLocal, engine, enqueue_after_commit
from flask_app.jobs import jobs


def create_app() -> Flask:
    app = Flask(__name__)
    Base.metadata.create_all(engine)

    @app.post("/orders")
    def place_order() -> tuple[dict[str, Any], int]:
        body = request.get_json()
        try:
            with SessionLocal.begin() as session:
                order = Order(customer=body["customer"], total=int(body["total"]))
                session.add(order)
                session.flush()  # assigns order.id inside the transaction
                enqueue_after_commit(session, "orders.confirm", {"order_id": order.id})
                if order.total <= 0:  # a later step fails: no order, and no job either
                    raise ValueError("total must be positive")
                order_id = order.id
        except ValueError as exc:
            return {"error": str(exc)}, 400  # rolled back: no order, no job
        return {"order_id": order_id}, 201

    @app.get("/orders/<int:order_id>")
    def show_order(order_id: int) -> dict[str, Any]:
        with SessionLocal() as session:
            order = session.get(Order, order_id)
            if order is None:
                abort(404)
            return {"id": order.id, "status": order.status}

    @app.post("/exports/orders")
    def export_orders() -> dict[str, Any]:
        with SessionLocal() as session:
            rows = [{"id": order.id, "customer": order.customer, "total": order.total}
                    for order in session.scalars(select(Order).order_by(Order.id))]
        export = jobs.exports.create(rows, filename="orders.csv", owner="flask-demo")
        return {"url": jobs.exports.download_url(export, base_url=request.host_url + "files")}

    @app.route("/files/exports/<token>", methods=["GET", "HEAD"])
    def download(token: str) -> Response:
        answer = jobs.exports.serve(token, range_header=request.headers.get("Range"),
                                    if_range=request.headers.get("If-Range"),
                                    head=request.method == "HEAD")
        if answer.status in (404, 410):
            return Response(answer.message, status=answer.status, headers=answer.headers)
        return Response(answer.chunks(), status=answer.status, headers=answer.headers,
                        direct_passthrough=True)

    return app
