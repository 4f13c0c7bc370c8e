"""Paws & Whiskers: the animal shelter this course tests.

A deliberately small FastAPI + SQLAlchemy 2.x (async) application that still has the
parts real apps have and real tests trip over: unique constraints, a route that retries
after ``IntegrityError``, a payment gateway over HTTP, a background e-mail and a
scheduled job.
"""
