"""The propsync command against moto (the same code runs against AWS)."""

import json

import pytest

from propsync import cli
from propsync_local.cfn_template import REPO_ROOT, load_template
from tests.support.api import basic

NEW_PROJECT = "33333333-3333-3333-3333-333333333333"


def run(capsys, *argv):
    capsys.readouterr()  # not what came before: the handlers' logs go to stdout
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    return code, lines, captured.err


def test_create_project_key_list_and_revoke(api, capsys):
    code, [project], _ = run(capsys, "create-project", "--name", "Shop", "--token", NEW_PROJECT)
    assert code == 0
    assert project["project_token"] == NEW_PROJECT

    code, [key], _ = run(
        capsys, "create-key", "--project", NEW_PROJECT, "--permission", "customer_properties:get"
    )
    assert code == 0
    assert key["permissions"] == ["customer_properties:get"]
    header = basic(key["api_key_id"], key["api_secret"])
    response = api.export_one({"registered": "x"}, project=NEW_PROJECT, authorization=header)
    assert response.status == 404  # authenticated, and the customer does not exist

    code, keys, _ = run(capsys, "list-keys", "--project", NEW_PROJECT)
    assert code == 0
    assert [k["api_key_id"] for k in keys] == [key["api_key_id"]]
    assert "api_secret" not in keys[0]
    assert key["api_secret"] not in json.dumps(keys)

    code, [revoked], _ = run(capsys, "revoke-key", key["api_key_id"])
    assert (code, revoked["revoked"]) == (0, True)
    response = api.export_one({"registered": "x"}, project=NEW_PROJECT, authorization=header)
    assert response.status == 401
    _, [listed], _ = run(capsys, "list-keys", "--project", NEW_PROJECT)
    assert listed["revoked"] is True


def test_a_new_project_gets_a_uuid_token(api, capsys):
    code, [project], _ = run(capsys, "create-project", "--name", "Auto")
    assert code == 0
    assert len(project["project_token"]) == 36


def test_errors_are_reported_with_exit_code_1(api, capsys):
    run(capsys, "create-project", "--name", "Shop", "--token", NEW_PROJECT)
    code, _, err = run(capsys, "create-project", "--name", "Again", "--token", NEW_PROJECT)
    assert (code, err.strip()) == (1, f"project {NEW_PROJECT} already exists")
    code, _, err = run(capsys, "create-key", "--project", "44444444-4444-4444-4444-444444444444")
    assert code == 1
    assert "create it first" in err
    code, _, err = run(capsys, "create-project", "--name", "X", "--token", "shop-1")
    assert code == 2
    assert "not a UUID" in err
    code, _, err = run(capsys, "revoke-key", "no-such-key")
    assert (code, err.strip()) == (1, "no API key no-such-key")


def test_a_key_erases_only_when_its_permission_was_named(api, capsys):
    """customers:anonymize cannot be undone: a key gets it only by name."""
    run(capsys, "create-project", "--name", "Shop", "--token", NEW_PROJECT)
    code, [default], _ = run(capsys, "create-key", "--project", NEW_PROJECT)
    assert code == 0
    assert default["permissions"] == ["customer_properties:get", "customer_properties:set"]
    code, [eraser], _ = run(
        capsys, "create-key", "--project", NEW_PROJECT, "--permission", "customers:anonymize"
    )
    assert code == 0
    assert eraser["permissions"] == ["customers:anonymize"]
    for key, status in ((default, 403), (eraser, 404)):  # 404: allowed, nobody to erase
        header = basic(key["api_key_id"], key["api_secret"])
        answer = api.anonymize({"registered": "x"}, project=NEW_PROJECT, authorization=header)
        assert answer.status == status, answer.body
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["create-key", "--help"])
    assert "customers:anonymize" in capsys.readouterr().out


def test_unknown_permissions_are_refused(api, capsys):
    with pytest.raises(SystemExit):
        cli.main(["create-key", "--project", api.project, "--permission", "everything"])


def test_revoking_says_how_long_the_key_may_still_work(api, capsys):
    """API Gateway caches each authorizer answer for ReauthorizeEvery seconds, so
    a revoked key is not refused 'at once': the CLI and the README say how long."""
    seconds = TEMPLATE_CACHE_SECONDS
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "at once" not in help_text
    assert f"within {seconds} s" in help_text

    code, [revoked], _ = run(capsys, "revoke-key", api.key_id)
    assert code == 0
    assert revoked["refused_within_seconds"] == seconds
    assert f"within {seconds} s" in revoked["note"]

    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    assert f"refused within {seconds} s" in readme


TEMPLATE_CACHE_SECONDS = load_template()["Resources"]["PropsyncApi"]["Properties"]["Auth"][
    "Authorizers"
]["ApiKeyAuthorizer"]["Identity"]["ReauthorizeEvery"]


# ---------------------------------------------------------------- id types


def test_a_new_project_has_the_default_id_types(api, capsys):
    code, [project], _ = run(capsys, "create-project", "--name", "Shop", "--token", NEW_PROJECT)
    assert code == 0
    assert project["id_types"] == {"cookie": "soft", "registered": "hard"}
    code, listed, _ = run(capsys, "list-id-types", "--project", NEW_PROJECT)
    assert code == 0
    assert listed == [
        {"id_type": "cookie", "kind": "soft"},
        {"id_type": "registered", "kind": "hard"},
    ]


@pytest.mark.parametrize(("flag", "kind"), [("--soft", "soft"), ("--hard", "hard")])
def test_set_id_type_adds_one_and_says_when_tracking_accepts_it(api, capsys, flag, kind):
    code, [added], _ = run(
        capsys, "set-id-type", "--project", api.project, "--id-type", "email", flag
    )
    assert code == 0
    assert added == {
        "project_token": api.project,
        "id_type": "email",
        "kind": kind,
        "added": True,
        "note": "tracking and the customer routes accept it within 60 s (each container "
        "caches a project's id types that long); imports started from now on",
    }
    _, listed, _ = run(capsys, "list-id-types", "--project", api.project)
    assert {"id_type": "email", "kind": kind} in listed
    assert len(listed) == 3


def test_set_id_type_again_with_the_same_kind_succeeds_and_changes_nothing(api, capsys):
    run(capsys, "set-id-type", "--project", api.project, "--id-type", "email", "--soft")
    code, [again], err = run(
        capsys, "set-id-type", "--project", api.project, "--id-type", "email", "--soft"
    )
    assert (code, err) == (0, "")
    assert again["added"] is False
    assert "nothing changed" in again["note"]
    code, [default], _ = run(
        capsys, "set-id-type", "--project", api.project, "--id-type", "registered", "--hard"
    )
    assert (code, default["added"]) == (0, False)


def test_the_kind_of_an_id_type_cannot_be_changed(api, capsys):
    code, out, err = run(
        capsys, "set-id-type", "--project", api.project, "--id-type", "cookie", "--hard"
    )
    assert (code, out) == (1, [])
    assert err.count("\n") == 1
    assert err.startswith("id type 'cookie' is already soft; the kind of an id type cannot change")
    assert "customers may already hold several values of it" in err
    _, listed, _ = run(capsys, "list-id-types", "--project", api.project)
    assert {"id_type": "cookie", "kind": "soft"} in listed


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["--project", "44444444-4444-4444-4444-444444444444", "--id-type", "email", "--soft"],
            1,
            "no project 44444444-4444-4444-4444-444444444444: create it first",
        ),
        (
            ["--project", "shop-1", "--id-type", "email", "--soft"],
            1,
            "--project 'shop-1' is not a project token (a UUID)",
        ),
        (
            ["--project", "{project}", "--id-type", "e mail", "--soft"],
            2,
            "id type 'e mail' is not allowed: use 1 to 64 letters, digits, '_', '.' or '-'",
        ),
    ],
    ids=["unknown project", "not a token", "bad name"],
)
def test_set_id_type_refusals_are_one_line(api, capsys, argv, code, message):
    argv = [a.replace("{project}", api.project) for a in argv]
    got_code, out, err = run(capsys, "set-id-type", *argv)
    assert (got_code, out, err) == (code, [], message + "\n")


def test_set_id_type_needs_exactly_one_kind(api, capsys):
    for kinds in ([], ["--hard", "--soft"]):
        with pytest.raises(SystemExit):
            cli.main(["set-id-type", "--project", api.project, "--id-type", "x", *kinds])


def test_list_id_types_of_an_unknown_project(api, capsys):
    code, out, err = run(
        capsys, "list-id-types", "--project", "44444444-4444-4444-4444-444444444444"
    )
    assert (code, out) == (1, [])
    assert err == "no project 44444444-4444-4444-4444-444444444444: create it first\n"


def test_set_id_type_help_says_how_long_until_tracking_accepts_it(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "set-id-type" in help_text
    assert "tracking accepts it within 60 s" in help_text
