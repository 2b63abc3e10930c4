"""The reference service the drills fail over: one code base, ``--service`` picks web, orders or catalog.

Kept import-light on purpose: a dozen instances start at once on a 2-core box, so psycopg is
imported only by services that need a database and boto3 only when a queue is configured.
"""
