"""Reconcile logic as plain async functions: desired state (the spec, the Secrets it names) and observed state
(the object's status, Fastly) in; actions on Fastly, and the status to record, out. Nothing here imports Kopf."""
