"""propsync: newer-wins synchronization of customer properties.

The shared layer of every propsync Lambda. Modules, from the inside out:

- ``merge_rule``: the one rule (pure): which of two versions of a property wins.
- ``canonical_json`` / ``properties`` / ``timestamps``: what a valid property
  name, value and update time are, and their exact encodings.
- ``store``: the only module that talks to DynamoDB.
- ``identity``: customer ids -> internal customer id.
- ``customer_updates`` / ``customer_view``: the write and read paths the
  handlers call.
"""
