"""The work of each asset, free of Dagster: source -> engine -> storage for one tenant and some days.

Assets are thin shells around these functions, so the whole pipeline can be run and tested without an
orchestrator, and a reader finds each behaviour under the stage that names it.
"""
