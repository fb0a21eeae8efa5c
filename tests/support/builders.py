"""Small builders shared by tests."""

import re

from propsync import canonical_json
from propsync.merge_rule import PropertyVersion


def versions(properties: dict, timestamp: float, sequence: int = 0) -> dict[str, PropertyVersion]:
    return {
        name: PropertyVersion(canonical_json.dumps(v), timestamp, sequence)
        for name, v in properties.items()
    }


def values_of(record) -> dict:
    """name -> (decoded value, timestamp) of a stored record, tombstones included."""
    return {
        name: (canonical_json.loads(v.encoded_value), v.timestamp)
        for name, v in record.properties.items()
    }


def expression_operators(expression: str) -> int:
    """Operators and functions of a DynamoDB expression, as its 300-limit counts them."""
    functions = len(
        re.findall(
            r"\b(?:attribute_not_exists|attribute_exists|contains|if_not_exists)\(", expression
        )
    )
    keywords = len(re.findall(r"\b(?:AND|OR|NOT)\b", expression))
    comparators = len(re.findall(r"<=|>=|<>|<|>|=", expression))
    return functions + keywords + comparators
