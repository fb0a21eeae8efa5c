"""template.yaml as CloudFormation deploys it for given parameter values.

Conditions are evaluated, ``Fn::If`` is resolved to the branch taken,
``AWS::NoValue`` drops what it stands for, and resources and outputs whose
condition is false are left out. Everything else stays as written, references
to parameters included, so that a test can check what a setting refers to.
Only the condition functions the template uses are understood (Equals, Not,
And, Or, Condition); anything else is an error rather than a guess.
"""

from __future__ import annotations

from typing import Any

NO_VALUE = {"Ref": "AWS::NoValue"}


def deployed(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    """``template`` with ``parameters`` set (the others at their defaults)."""
    declared = template.get("Parameters", {})
    unknown = set(parameters) - set(declared)
    assert not unknown, f"not parameters of the template: {sorted(unknown)}"
    for name, value in parameters.items():
        allowed = declared[name].get("AllowedValues")
        assert allowed is None or value in allowed, f"{name}={value!r} is not allowed"
    values = {
        name: str(parameter["Default"])
        for name, parameter in declared.items()
        if "Default" in parameter
    } | parameters
    definitions = template.get("Conditions", {})
    conditions = {name: _condition(definitions[name], values, definitions) for name in definitions}
    result: dict[str, Any] = _resolved(template, conditions)
    for section in ("Resources", "Outputs"):
        if section in result:
            result[section] = {
                name: entry
                for name, entry in result[section].items()
                if "Condition" not in entry or conditions[entry["Condition"]]
            }
    return result


def _condition(node: Any, values: dict[str, str], definitions: dict[str, Any]) -> bool:
    [(function, argument)] = node.items()
    if function == "Condition":
        return _condition(definitions[argument], values, definitions)
    if function == "Fn::Equals":
        left, right = (_value(side, values) for side in argument)
        return left == right
    if function == "Fn::Not":
        [inner] = argument
        return not _condition(inner, values, definitions)
    if function == "Fn::And":
        return all(_condition(inner, values, definitions) for inner in argument)
    if function == "Fn::Or":
        return any(_condition(inner, values, definitions) for inner in argument)
    raise ValueError(f"condition function {function} is not understood here")


def _value(node: Any, values: dict[str, str]) -> str:
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return values[node["Ref"]]
    if isinstance(node, str | int | float):
        return str(node)
    raise ValueError(f"{node!r} is not a value a condition can compare here")


def _resolved(node: Any, conditions: dict[str, bool]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return _resolved(when_true if conditions[name] else when_false, conditions)
        resolved = {key: _resolved(value, conditions) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value != NO_VALUE}
    if isinstance(node, list):
        items = [_resolved(value, conditions) for value in node]
        return [value for value in items if value != NO_VALUE]
    return node
