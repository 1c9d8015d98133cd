"""Thin Prefect flows: each task calls one engine service on a batch; no decisions here."""
