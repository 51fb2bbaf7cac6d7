"""The hand-written WSDL of the portal's SOAP face (``soap-facade.md``), shipped as package data.

The mock serves this very file at ``GET /soap?wsdl`` and the adapter loads it from disk with zeep,
so both faces of the contract read one definition and start-up never fetches anything.
"""

from __future__ import annotations

import pathlib
from importlib import resources

TARGET_NAMESPACE = "urn:dvcqg:lgsp:v1"
SERVICE_NAME = "DVCQGService"
PORT_NAME = "DVCQGSoap"
BINDING_NAME = "DVCQGSoapBinding"
BINDING_QNAME = "{urn:dvcqg:lgsp:v1}DVCQGSoapBinding"
"""What ``zeep.Client.create_service`` wants to point the binding at another address."""

OPERATIONS = (
    "DongBoHoSoMC",
    "CapNhatTienDoHoSoMC",
    "DongBoTrangThaiHoSo",
    "TraCuuHoSo",
    "LayThuTuc",
    "LayDanhSachTTHC",
    "DanhSachHoSo",
    "XacNhanHoSo",
    "TraCuuThongTinCongDan",
)
"""Every operation of the WSDL: the portal services by name, plus the citizen lookup."""

_FILE = "dvcqg.wsdl"


def wsdl_path() -> pathlib.Path:
    """The WSDL on disk (the package is installed unzipped, as setuptools does by default)."""
    path = pathlib.Path(str(resources.files(__name__).joinpath(_FILE)))
    if not path.is_file():  # a zipped install would need importlib.resources.as_file instead
        raise FileNotFoundError(f"the shipped WSDL is missing: {path}")
    return path


def wsdl_bytes() -> bytes:
    """The WSDL's exact bytes, as the mock serves them."""
    return resources.files(__name__).joinpath(_FILE).read_bytes()
