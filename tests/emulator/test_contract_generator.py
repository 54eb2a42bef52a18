"""scripts/nsxt_contract.py on small SDK-shaped sources (CI has no VMware wheel).

The generator reads the SDK's generated Python as data: struct bindings become schemas
(required = not Optional, enum values from the class constants, the longest field
name winning a prefix), stubs become operations (``?action=`` variants of one path and
method merged, with each action's body, answer and status in ``x-nsx-actions``).
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import zipfile
from pathlib import Path
from types import ModuleType

from tests.emulator.contract import ROOT

MODEL = '''
class Thing(VapiStruct):
    STATE_RUNNING = "running"
    STATE_STOPPED = "stopped"
    MONITOR_STATE_RUNNING = "running"
    def __init__(self): pass
Thing._set_binding_type(type.StructType(
    'com.vmware.nsx.model.thing', {
        'id': type.StringType(),
        'state': type.OptionalType(type.StringType()),
        'monitor_state': type.OptionalType(type.StringType()),
        'parts': type.OptionalType(type.ListType(type.ReferenceType(__name__, 'Part'))),
    },
    Thing, False, None))
class Part(VapiStruct):
    pass
Part._set_binding_type(type.StructType(
    'com.vmware.nsx.model.part', {'n': type.OptionalType(type.IntegerType())}, Part, False, None))
class ThingList(VapiStruct):
    pass
ThingList._set_binding_type(type.StructType(
    'com.vmware.nsx.model.thing_list', {
        'list': type.ListType(type.ReferenceType(__name__, 'Thing'))}, ThingList, False, None))
class ApiError(VapiStruct):
    pass
ApiError._set_binding_type(type.StructType(
    'com.vmware.nsx.model.api_error', {
        'error_message': type.OptionalType(type.StringType())}, ApiError, False, None))
class UpgradeBundleId(VapiStruct):
    pass
UpgradeBundleId._set_binding_type(type.StructType(
    'com.vmware.nsx.model.upgrade_bundle_id', {
        'bundle_id': type.OptionalType(type.StringType())}, UpgradeBundleId, False, None))
'''

STUB = '''
class _ThingsStub(ApiInterfaceStub):
    def __init__(self, config):
        get_input_type = type.StructType('operation-input', {
            'thing_id': type.StringType(),
            'verbose': type.OptionalType(type.BooleanType()),
        })
        get_error_dict = {'com.vmware.vapi.std.errors.not_found': None}
        get_rest_metadata = OperationRestMetadata(
            http_method='GET',
            url_template='/api/v1/upgrade/things/{thing-id}',
            path_variables={'thing_id': 'thing-id'},
            query_parameters={'verbose': 'verbose'})
        start_input_type = type.StructType('operation-input', {})
        start_rest_metadata = OperationRestMetadata(
            http_method='POST', url_template='/api/v1/upgrade/things?action=start',
            path_variables={}, query_parameters={})
        add_input_type = type.StructType('operation-input', {
            'thing_list': type.ReferenceType('com.vmware.nsx.model_client', 'ThingList')})
        add_rest_metadata = OperationRestMetadata(
            http_method='POST', url_template='/api/v1/upgrade/things?action=add',
            request_body_parameter='thing_list', path_variables={}, query_parameters={})
        operations = {
            'get': {'input_type': get_input_type,
                    'output_type': type.ReferenceType('com.vmware.nsx.model_client', 'Thing')},
            'start': {'input_type': start_input_type, 'output_type': type.VoidType()},
            'add': {'input_type': add_input_type,
                    'output_type': type.ReferenceType('com.vmware.nsx.model_client',
                                                      'ThingList')},
        }
class _BundlesStub(ApiInterfaceStub):
    def __init__(self, config):
        create_input_type = type.StructType('operation-input', {})
        create_rest_metadata = OperationRestMetadata(
            http_method='POST', url_template='/api/v1/upgrade/bundles',
            path_variables={}, query_parameters={})
        operations = {'create': {'input_type': create_input_type, 'output_type':
            type.ReferenceType('com.vmware.nsx.model_client', 'UpgradeBundleId')}}
class _OtherStub(ApiInterfaceStub):
    def __init__(self, config):
        get_input_type = type.StructType('operation-input', {})
        get_rest_metadata = OperationRestMetadata(
            http_method='GET', url_template='/api/v1/logical-switches',
            path_variables={}, query_parameters={})
        operations = {'get': {'input_type': get_input_type, 'output_type': type.VoidType()}}
'''


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nsxt_contract",
                                                  ROOT / "scripts" / "nsxt_contract.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nsxt_contract"] = module
    spec.loader.exec_module(module)
    return module


def _wheel(path: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr("com/vmware/nsx/model_client.py", MODEL)
        wheel.writestr("com/vmware/nsx/upgrade_client.py", STUB)
    path.write_bytes(buffer.getvalue())
    return path


def test_the_generator_reads_fields_enums_and_operations(tmp_path: Path) -> None:
    gen = _generator()
    out = tmp_path / "contract.json"
    code = gen.main(["--wheel", str(_wheel(tmp_path / "sdk.whl")), "--version", "2.3",
                     "--commit", "a" * 40, "--out", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    thing = doc["components"]["schemas"]["Thing"]
    assert thing["required"] == ["id"] and thing["additionalProperties"] is False
    assert thing["properties"]["state"]["enum"] == ["running", "stopped"]
    assert thing["properties"]["monitor_state"]["enum"] == ["running"]  # longest prefix
    assert thing["properties"]["parts"]["items"] == {"$ref": "#/components/schemas/Part"}
    assert set(doc["paths"]) == {"/upgrade/things/{thing-id}", "/upgrade/things",
                                 "/upgrade/bundles"}  # only the upgrade subset
    get = doc["paths"]["/upgrade/things/{thing-id}"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in get["parameters"]] == [
        ("thing-id", "path", True), ("verbose", "query", False)]
    assert set(get["responses"]) == {"200", "401", "404"}
    post = doc["paths"]["/upgrade/things"]["post"]
    actions = post["x-nsx-actions"]
    assert actions["start"]["response"] is None and actions["start"]["status"] == 200
    assert actions["add"]["request"] == {"$ref": "#/components/schemas/ThingList"}
    action = next(p for p in post["parameters"] if p["name"] == "action")
    assert action["required"] is True and action["schema"]["enum"] == ["add", "start"]
    upload = doc["paths"]["/upgrade/bundles"]["post"]  # the multipart supplement
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert doc["info"]["x-provenance"]["commit"] == "a" * 40
    again = gen.main(["--wheel", str(tmp_path / "sdk.whl"), "--version", "2.3",
                      "--commit", "a" * 40, "--out", str(out), "--check"])
    assert again == 0
    out.write_text(out.read_text().replace('"running"', '"starting"', 1))
    assert gen.main(["--wheel", str(tmp_path / "sdk.whl"), "--version", "2.3",
                     "--commit", "a" * 40, "--out", str(out), "--check"]) == 1
