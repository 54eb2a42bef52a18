"""The emulated Ops Manager's state: its version and its deployed products, in one JSON file.

The server reads the file on every request, so moving a version (``nsxt-upgrade emulate
opsman-set``, or a test writing the file) is what an operator's upgrade of the Ops Manager
VM or of the PKS tile would be: the next answer reports it.  Writes replace the file
atomically (written beside it, fsynced, renamed).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from upgrade.adapters.opsman.client import PKS_TYPE
from upgrade.core.versions import Version
from upgrade.errors import InputError

STATE_FILE = "opsman.json"
#: how ``/api/v0/info`` writes the version: ``minor`` as Ops Manager 2.x does
#: (``2.3-build.123``), ``patch`` with the patch release (``2.3.1-build.123``)
INFO_FORMATS = ("minor", "patch")
_GUID = "pivotal-container-service-0123456789abcdef0123"


@dataclass(frozen=True, slots=True)
class OpsmanState:
    """What the emulated Ops Manager runs."""

    opsman: Version
    pks: Version | None
    build: int = 123
    pks_build: int = 8
    info_format: str = "minor"
    pks_guid: str = _GUID

    def info_version(self) -> str:
        """``/api/v0/info``'s ``info.version``."""
        parts = self.opsman.padded(3)
        shown = parts[:2] if self.info_format == "minor" else parts
        return f"{'.'.join(str(p) for p in shown)}-build.{self.build}"

    def deployed_products(self) -> list[dict[str, object]]:
        """``/api/v0/deployed/products``: the director, and the PKS tile when deployed."""
        products: list[dict[str, object]] = [{
            "installation_name": "p-bosh", "guid": "p-bosh-0123456789abcdef0123",
            "type": "p-bosh", "product_version": self.info_version(),
            "label": "BOSH Director", "service_broker": False, "bosh_read_creds": False,
            "stale": {"parent_products_deployed_more_recently": []},
        }]
        if self.pks is not None:
            products.append({
                "installation_name": self.pks_guid, "guid": self.pks_guid, "type": PKS_TYPE,
                "product_version": f"{self.pks}-build.{self.pks_build}",
                "label": "Enterprise PKS", "service_broker": False, "bosh_read_creds": False,
                "stale": {"parent_products_deployed_more_recently": []},
            })
        return products

    def to_json(self) -> dict[str, object]:
        """The state file's content."""
        return {"opsman": str(self.opsman), "build": self.build,
                "pks": None if self.pks is None else str(self.pks),
                "pks_build": self.pks_build, "info_format": self.info_format,
                "pks_guid": self.pks_guid}

    @classmethod
    def from_json(cls, doc: dict[str, object], where: Path) -> OpsmanState:
        """Read the state file's content; InputError naming ``where`` when it is not one."""
        try:
            pks = doc.get("pks")
            fmt = str(doc.get("info_format", "minor"))
            if fmt not in INFO_FORMATS:
                raise ValueError(f"info_format {fmt!r} is not one of {INFO_FORMATS}")
            return cls(Version.parse(str(doc["opsman"])),
                       None if pks is None else Version.parse(str(pks)),
                       int(str(doc.get("build", 123))), int(str(doc.get("pks_build", 8))),
                       fmt, str(doc.get("pks_guid", _GUID)))
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"{where}: not an Ops Manager emulator state ({exc})") from None


def state_path(state_dir: Path) -> Path:
    """The state file in ``state_dir``."""
    return state_dir / STATE_FILE


def load_state(state_dir: Path) -> OpsmanState:
    """The state in ``state_dir``; InputError when there is none."""
    path = state_path(state_dir)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{state_dir} holds no Ops Manager emulator state ({STATE_FILE}); "
                         "start one with `nsxt-upgrade emulate opsman --state-dir DIR "
                         "--opsman V --pks V`") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not an Ops Manager emulator state")
    return OpsmanState.from_json(doc, path)


def save_state(state_dir: Path, state: OpsmanState) -> None:
    """Replace the state file atomically (and durably)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(state_dir)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with temp.open("w", encoding="utf-8") as out:
        json.dump(state.to_json(), out, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    temp.replace(path)
