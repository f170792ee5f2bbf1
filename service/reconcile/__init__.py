"""Reconcile: page through Clerk's Backend API and make the replica equal to Clerk.

It feeds the same order-safe writes as webhooks, so the two can run at once.
"""
