"""Stack traces with the app's frames in view and bullpen's, BullMQ's and the standard
library's folded: Python tracebacks (chained too) and Node stacks."""

from __future__ import annotations

from bullpen.web.tracebacks import APP, MACHINERY, fold, kind_of

PYTHON = '''Traceback (most recent call last):
  File "/v/lib/python3.11/site-packages/bullpen/runtime/dispatch.py", line 55, in __call__
    result = await task.handler(*args)
             ^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3.11/asyncio/tasks.py", line 100, in wrapped
    return await inner
  File "/srv/app/myapp/tasks.py", line 12, in send_digest
    mailer.send(data["to"])
  File "/srv/app/.venv/lib/python3.11/site-packages/smtplib_plus/client.py", line 40, in send
    raise ConnectionError("mail server said no")
ConnectionError: mail server said no
'''
NODE = '''Error: asked to fail
    at Worker.processor (/srv/node/worker.mjs:31:13)
    at Worker.callProcessJob (/srv/node/node_modules/bullmq/dist/cjs/classes/worker.js:113:16)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
'''


def test_python_frames_are_grouped_by_whose_code_they_are() -> None:
    trace = fold(PYTHON)
    kinds = [(block.kind, block.frames) for block in trace.blocks]
    assert kinds == [("text", 0), (MACHINERY, 2), (APP, 2), ("text", 0)]
    # A frame keeps its source lines (and the ^^^ marks) with it.
    assert trace.blocks[1].lines[1].strip().startswith("result = await")
    assert trace.blocks[2].lines[-1].strip() == 'raise ConnectionError("mail server said no")'
    assert trace.raised_in == ('File "/srv/app/.venv/lib/python3.11/site-packages/smtplib_plus/'
                               'client.py", line 40, in send')
    assert trace.error == "ConnectionError: mail server said no"
    assert trace.folded == 2


def test_node_frames_and_chained_python_traces() -> None:
    node = fold(NODE)
    assert [(block.kind, block.frames) for block in node.blocks] == [
        ("text", 0), (APP, 1), (MACHINERY, 2)]
    chained = fold(PYTHON + "\nThe above exception was the direct cause of the following "
                   "exception:\n\n" + PYTHON)
    assert sum(block.kind == APP for block in chained.blocks) == 2
    assert chained.folded == 4


def test_whose_code_a_path_is() -> None:
    for path in ("/usr/lib/python3.12/concurrent/futures/thread.py", "<frozen runpy>",
                 "node:internal/timers", "/x/site-packages/bullmq/worker.py",
                 "/home/me/bullpen/src/bullpen/web/app.py"):
        assert kind_of(path) == MACHINERY, path
    for path in ("/srv/app/myapp/tasks.py", "/x/site-packages/requests/api.py",
                 "/home/me/bullpen-app/bullpen_tasks.py", "/srv/node/worker.mjs"):
        assert kind_of(path) == APP, path
