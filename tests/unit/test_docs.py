"""The docs say what the code does. docs/API.md is the contract: it names
every route of template.yaml (and nothing else), and every sentence the code
answers an API error with. Every document stays inside the repository, every
`module.function` a document or docstring names exists, and the import keys
the docs give are the ones the code writes.

The sentences are read from the code itself: every string of every message
given to an API error (the exceptions the handlers turn into 4xx/5xx answers,
a failed command's result, the error bodies the handlers and API Gateway
answer with), split where a value from the request goes in. Each piece must
appear verbatim in docs/API.md, so a new or reworded message fails this test
until the page says it too."""

import ast
import importlib
import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from propsync import errors
from propsync.imports import import_file
from propsync_local.apigw import api_routes, routes
from propsync_local.cfn_template import REPO_ROOT, load_template

API_DOC = (REPO_ROOT / "docs" / "API.md").read_text()

LAYER = REPO_ROOT / "layers" / "propsync" / "propsync"
API_MODULES = [
    *(
        LAYER / f"{name}.py"
        for name in (
            "access",
            "api",
            "canonical_json",
            "customer_updates",
            "customer_view",
            "errors",
            "http_json",
            "id_type_cache",
            "id_types",
            "identity",
            "import_api",
            "models",
            "properties",
            "timestamps",
            "tracking",
            "tracking_queue",
        )
    ),
    *sorted((LAYER / "store").glob("*.py")),
    *(
        REPO_ROOT / "functions" / name / "app.py"
        for name in ("authorizer", "customers", "tracking")
    ),
    REPO_ROOT / "functions" / "imports" / "api.py",
]
# The errors the handlers answer with (every class of propsync.errors, whose
# body() words the fixed answers), and the function that makes a failed
# command's result.
API_ERRORS = {
    name
    for name, value in vars(errors).items()
    if inspect.isclass(value) and issubclass(value, errors.PropsyncError)
} | {"failure"}


def test_every_route_of_the_template_and_no_other_is_documented():
    """Every API route (the console's pages are README's "Web console")."""
    documented = set(re.findall(r"^### `([A-Z]+) (/\S+)`$", API_DOC, re.M))
    assert documented == {(route.method, route.resource) for route in api_routes()}


def _section(markdown: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of its level or above."""
    level = len(heading.split(" ", 1)[0])
    start = markdown.index(f"\n{heading}\n") + len(heading) + 2
    end = re.search(rf"^#{{1,{level}}} ", markdown[start:], re.M)
    return markdown[start : start + end.start()] if end else markdown[start:]


def test_the_routes_api_md_leaves_out_are_named_in_its_intro_and_in_readme():
    """API.md's opening says which routes it does not describe (the console's
    pages, not JSON) and where they are: README's "Web console", which names
    each of them too."""
    intro = API_DOC.split("\n## ", 1)[0]
    web_console = _section((REPO_ROOT / "README.md").read_text(), "## Web console")
    pages = [route for route in routes() if route not in api_routes()]
    assert pages, "the template serves the console's pages"
    # exactly the console's pages: GETs of /console and what is under it
    assert all(
        route.method == "GET" and route.resource.split("/")[1] == "console" for route in pages
    ), pages
    assert [route for route in api_routes() if route.resource.split("/")[1] == "console"] == []
    for route in pages:
        assert route.resource in " ".join(intro.split()), f"{route.resource} not in API.md's intro"
        assert route.resource in web_console, f"{route.resource} not in README's Web console"
    assert 'README\'s "Web console"' in " ".join(intro.split())


class _Messages:
    """The literal pieces of the error messages of one module."""

    def __init__(self, path: Path):
        self.tree = ast.parse(path.read_text(), str(path))
        self.constants = {
            target.id: node.value.value
            for node in self.tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        self.functions = {
            node.name: node for node in ast.walk(self.tree) if isinstance(node, ast.FunctionDef)
        }

    def pieces(self) -> Iterator[str]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and (_called(node) in API_ERRORS or _is_problem(node)):
                for argument in node.args:
                    yield from self._text(argument, depth=0)
            elif isinstance(node, ast.Dict):  # {"success": False, "error": "..."}
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "error":
                        yield from self._text(value, depth=0)

    def _text(self, node: ast.AST, depth: int) -> Iterator[str]:
        """Literal text of a message expression; what comes from the request
        (any other expression) is where a piece ends."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value
        elif isinstance(node, ast.JoinedStr):
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    yield from self._text(part.value, depth)
                else:
                    yield from self._text(part, depth)
        elif isinstance(node, ast.BinOp):
            yield from self._text(node.left, depth)
            yield from self._text(node.right, depth)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                yield from self._text(value, depth)
        elif isinstance(node, ast.Name) and node.id in self.constants:
            yield self.constants[node.id]
        elif isinstance(node, ast.GeneratorExp | ast.ListComp):
            yield from self._text(node.elt, depth)
        elif isinstance(node, ast.Call):
            function = self.functions.get(_called(node) or "")
            if isinstance(node.func, ast.Attribute) and node.func.attr == "join":
                for argument in node.args:
                    yield from self._text(argument, depth)
            elif function is not None and depth < 3:  # a helper of this module that words it
                for returned in ast.walk(function):
                    if isinstance(returned, ast.Return) and returned.value is not None:
                        yield from self._text(returned.value, depth + 1)


def _is_problem(call: ast.Call) -> bool:
    """``problems.append(...)``: one problem of a message that names several."""
    function = call.func
    return (
        isinstance(function, ast.Attribute)
        and function.attr == "append"
        and isinstance(function.value, ast.Name)
        and function.value.id == "problems"
    )


def _called(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _gateway_messages() -> Iterator[str]:
    responses = load_template()["Resources"]["PropsyncApi"]["Properties"]["GatewayResponses"]
    for response in responses.values():
        for body in response["ResponseTemplates"].values():
            yield json.loads(body)["error"]


def message_pieces() -> list[tuple[str, str]]:
    found = [("template.yaml", message) for message in _gateway_messages()]
    for path in API_MODULES:
        found += [(path.name, piece) for piece in _Messages(path).pieces()]
    # a piece that is only punctuation or a short joint ("=", " is ") says nothing
    return sorted(
        {(where, piece.strip()) for where, piece in found if len(re.findall(r"\w", piece)) >= 4}
    )


def test_the_scan_finds_the_messages_it_is_meant_to():
    pieces = {piece for _, piece in message_pieces()}
    assert len(pieces) > 60
    for expected in (
        "Customer does not exist",  # an error body of propsync.errors
        "invalid secret",  # InvalidSecretError's message
        "must be an object, got",  # one of the problems a request envelope lists
        "temporary server error; the command was not completed, retry it",  # a constant
        "It has 13 digits and looks like milliseconds: divide it by 1000.",  # a helper's return
        "JSON has no NaN or infinity",  # a constant inside an f-string
        "Too many requests: retry with backoff",  # an API Gateway response
    ):
        assert expected in pieces


@pytest.mark.parametrize(("where", "piece"), message_pieces())
def test_every_error_sentence_of_the_code_is_in_the_api_doc(where, piece):
    assert piece in API_DOC, f"{where}: {piece!r} is not in docs/API.md"


DOCUMENTS = [REPO_ROOT / "README.md", REPO_ROOT / "events" / "README.md"]
DOCUMENTS += sorted((REPO_ROOT / "docs").glob("*.md"))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_documents_point_only_inside_the_repository(document):
    """A clone has nothing beside it: no document sends its reader to ../."""
    text = document.read_text()
    assert not re.search(r"(?<!\.)\.\./", text)  # "../x", not the ellipsis of ".../batch"
    for target in re.findall(r"\]\(([^)#]+)\)", text):  # markdown links
        if "://" not in target:
            assert (document.parent / target).exists(), target


SOURCES = [*DOCUMENTS, *sorted(LAYER.rglob("*.py")), *sorted((REPO_ROOT / "local").rglob("*.py"))]
SOURCES += sorted((REPO_ROOT / "functions").rglob("*.py"))
_REFERENCE = re.compile(
    r"`{1,2}((?:propsync(?:_local)?\.)?[a-z_]+(?:\.[a-z_]+)*)\.([A-Za-z_]\w*)(?:\([^`]*\))?`{1,2}"
)
_FILE_SUFFIXES = {"csv", "gz", "json", "md", "py", "toml", "txt", "yaml"}
_FILE_SUFFIXES |= {"css", "html", "js", "png"}  # the web console's files


def _module(name: str) -> ModuleType | None:
    for candidate in (name, f"propsync.{name}", f"propsync_local.{name}"):
        if candidate.startswith(("propsync.", "propsync_local.")):
            try:
                return importlib.import_module(candidate)
            except ModuleNotFoundError:
                continue
    return None


def code_references() -> list[tuple[str, str, str]]:
    """`module.name` written in docs, docstrings and comments, for modules of
    propsync or propsync_local (`store.customers.write_properties`, `propsync.api.Router`)."""
    found = set()
    for path in SOURCES:
        for owner, name in _REFERENCE.findall(path.read_text()):
            if name in _FILE_SUFFIXES:
                continue  # a file name: `store.py`
            if owner in ("propsync", "propsync_local") or _module(owner) is not None:
                found.add((path.name, owner, name))
    return sorted(found)


def _exists(owner: str, name: str) -> bool:
    if owner in ("propsync", "propsync_local"):
        return _module(f"{owner}.{name}") is not None
    module = _module(owner)
    assert module is not None
    if hasattr(module, name):
        return True
    if hasattr(module, "__path__") and _module(f"{owner}.{name}") is not None:
        return True  # a module of a package (`propsync.store.capacity`), imported or not
    classes = [value for value in vars(module).values() if inspect.isclass(value)]
    # a method: `customers.CustomerStore.write_properties`
    return any(name in vars(cls) for cls in classes)


def test_code_references_are_found():
    references = {(owner, name) for _, owner, name in code_references()}
    assert ("merge_rule", "wins") in references
    assert ("store.customers", "write_properties") in references


@pytest.mark.parametrize(("where", "owner", "name"), code_references())
def test_every_module_function_the_docs_name_exists(where, owner, name):
    assert _exists(owner, name), f"{where} names {owner}.{name}, which does not exist"


def test_the_docs_name_the_report_keys_the_import_writes():
    target = import_file("imports/<project token>/<import name>/<file>.csv")
    assert target is not None
    readme = (REPO_ROOT / "README.md").read_text()
    for document in (readme, API_DOC):
        assert target.report_key in document
        assert target.rejected_key in document
