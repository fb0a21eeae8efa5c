"""The store: the only package that talks to DynamoDB, one module per aggregate.

One table, keyed by ``pk`` (see template.yaml and docs/ARCHITECTURE.md):

- :mod:`~propsync.store.customers`: customer items ``<project>#c#<customer_id>``,
  one attribute per property, written with the merge rule inside DynamoDB:
  every property of an ``UpdateItem`` carries a condition on its stored
  timestamp, so a write never replaces a newer value, whatever runs beside it;
- :mod:`~propsync.store.identities`: identity items
  ``<project>#id#<id_type>#<id_value>`` (the customer each id belongs to) and
  the ids a customer item records;
- :mod:`~propsync.store.erasures`: erasure marks ``<project>#erased#<hash>``
  (a salted hash of an erased id, and when it was erased);
- :mod:`~propsync.store.access`: projects (with their id types) and API keys;
- :mod:`~propsync.store.imports`: import executions;
- :mod:`~propsync.store.conditional`: the conditional requests, built without I/O;
- :mod:`~propsync.store.dynamo`: the client, and DynamoDB's answers read one way.

The low-level client is used on purpose: values are plain strings and numbers
here, and the client is cheaper to import and call than the resource layer.
"""
