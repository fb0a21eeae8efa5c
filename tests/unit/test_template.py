"""template.yaml is the one description of what gets deployed; these checks pin
the choices the rest of the code relies on."""

import tomllib

from propsync_local.cfn_template import REPO_ROOT, create_table_kwargs, load_template

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]


def test_functions_run_python_3_13_on_arm64():
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Layers"] == [{"Ref": "PropsyncLayer"}]
    assert function_globals["Environment"]["Variables"]["PROPSYNC_TABLE_NAME"] == {
        "Ref": "PropsyncTable"
    }


def test_the_shared_layer_is_built_from_the_propsync_package():
    layer = RESOURCES["PropsyncLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    content = REPO_ROOT / layer["Properties"]["ContentUri"]
    assert (content / "propsync" / "__init__.py").is_file()
    assert (content / "requirements.txt").is_file()
    # the layer's Makefile installs arm64 wheels and compiles hash-checked
    # bytecode (make sam-check builds it and runs scripts/check-layer-bytecode.py)
    makefile = (content / "Makefile").read_text()
    assert "build-PropsyncLayer:" in makefile
    assert "--platform manylinux2014_aarch64" in makefile
    assert "--invalidation-mode checked-hash" in makefile


def test_pytest_imports_the_layer_from_the_same_folder_the_template_deploys():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert (
        RESOURCES["PropsyncLayer"]["Properties"]["ContentUri"]
        in (pyproject["tool"]["pytest"]["ini_options"]["pythonpath"])
    )


def test_the_table_is_keyed_by_pk_with_recovery_and_encryption():
    table = RESOURCES["PropsyncTable"]
    assert table["DeletionPolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


def test_create_table_arguments_come_from_the_template():
    kwargs = create_table_kwargs(TEMPLATE, "PropsyncTable", "name")
    assert kwargs == {
        "TableName": "name",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def test_functions_bound_by_the_sdks_cpu_get_a_whole_vcpu():
    # Lambda allocates CPU in proportion to memory, one vCPU at 1,769 MB;
    # make bench shows a batch's writes and an import's rows are CPU-bound.
    for name in ("TrackingFunction", "ImportFunction", "ImportChunkFunction"):
        assert RESOURCES[name]["Properties"]["MemorySize"] >= 1769, name


def test_a_failing_chunk_is_recorded_before_the_dead_letter_queue_could_take_it():
    from propsync import imports  # noqa: PLC0415

    redrive = RESOURCES["ChunkQueue"]["Properties"]["RedrivePolicy"]
    # the receive that gives up without running, and spares for when recording
    # the failure itself fails, all come before the DLQ
    assert imports.LAST_ATTEMPT_RECEIVE < imports.GIVE_UP_RECEIVE < redrive["maxReceiveCount"]
    # AWS advises at least 5: the Lambda service's own throttling uses up receives
    assert imports.LAST_ATTEMPT_RECEIVE >= 5
    chunks = RESOURCES["ImportChunkFunction"]["Properties"]["Events"]["Chunks"]["Properties"]
    assert chunks["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert chunks["BatchSize"] == 1
