"""Asynchronous media tasks (UPYUN ``apps`` …) on a durable, at-least-once queue.

* The catalog row (``tasks``) is the source of truth: status, attempts, lease, outputs, reason.
  A task is inserted in the same transaction as the upload that asks for it (core.outbox
  ``NewTask``), so a crash never loses one and never runs one whose upload did not commit.
* :mod:`.relay` hands due rows to the engine, the task id being the only payload: a task handed out
  twice is claimed once (``Catalog.claim_task`` is a compare-and-set), so duplicates are no-ops.
* :mod:`.engine` is huey: ``MemoryHuey`` in-process by default (nothing else to start), or
  ``RedisHuey`` when ``MEDIAGATE_REDIS_URL`` is set, so any number of worker processes on any
  node share one queue. huey's own ``Worker`` loop pulls and executes messages.
* :mod:`.runner` runs one attempt: claim (attempts + 1, leased), heartbeat, the kind's handler
  under a timeout, then either the outputs + ``done`` + the result notification in one
  transaction, or a retry with exponential backoff, or ``failed`` with a reason a person can read.
  A worker killed mid-task stops renewing its lease; the relay hands the task out again. Output
  keys are a function of the task (never random), and the fenced ``done`` write refuses a lapsed
  attempt, so a task leaves exactly one set of outputs however often it runs.
* :mod:`.registry`: task kind -> handler, dialect -> result notification. Kinds without a handler
  in this build fail with a reason saying so, never with a made-up result.
"""
